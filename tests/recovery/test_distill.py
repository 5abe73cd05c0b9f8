"""Distillation loss: zero for identical logits, positive otherwise, top-k variant, and a teacher run."""

from __future__ import annotations

import pytest
import torch

from llmprune.errors import LlmpruneError
from llmprune.models import load_model
from llmprune.recovery import recover
from llmprune.recovery.distill import IGNORE, Teacher, combine, kd_sum, loss_sums
from tests.tiny import tiny_model


def test_kl_is_zero_for_identical_logits_and_positive_otherwise():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 6, 50, generator=g) * 3
    labels = torch.randint(0, 50, (2, 6), generator=g)
    labels[0, :2] = IGNORE
    for temperature in (1.0, 2.0, 4.0):
        for topk in (None, 5):
            same = loss_sums(logits, labels, logits.clone(), temperature=temperature, topk=topk)
            assert same.tokens == 9 and abs(float(same.kd)) < 1e-5
    other = loss_sums(logits, labels, torch.randn(2, 6, 50, generator=g), temperature=2.0)
    assert float(other.kd) > 0.1
    s, t = torch.randn(7, 50, generator=g), torch.randn(7, 50, generator=g)
    ref = torch.nn.functional.kl_div(
        torch.log_softmax(s / 2, -1), torch.log_softmax(t / 2, -1), log_target=True, reduction="sum"
    )
    torch.testing.assert_close(kd_sum(s, t, temperature=2.0), ref * 4)
    assert float(kd_sum(s, t, topk=3)) >= 0
    ce = torch.nn.functional.cross_entropy(logits[:, :-1].reshape(-1, 50), labels[:, 1:].reshape(-1), reduction="sum")
    torch.testing.assert_close(same.ce, ce)
    torch.testing.assert_close(combine(other, 0.25), 0.75 * other.ce + 0.25 * other.kd)
    assert combine(loss_sums(logits, labels), 0.5) is not None


def test_teacher_is_frozen_and_vocab_checked():
    teacher = Teacher(tiny_model("llama").train(), 128)
    assert not teacher.model.training and not any(p.requires_grad for p in teacher.model.parameters())
    with pytest.raises(LlmpruneError, match="vocabulary"):
        Teacher(tiny_model("llama"), 256)


def test_recover_with_the_dense_teacher(pruned, text_file, tmp_path):
    """Distilling the (dense) model the pruned one came from: the KD term falls, CE still learns."""
    model, tok = load_model(str(pruned()), device="cpu")
    teacher = tiny_model("llama", heads=4, kv_heads=2, seed=0)
    cfg = {
        "data": str(text_file),
        "steps": 8,
        "batch_size": 4,
        "micro_batch_size": 4,
        "cutoff": 32,
        "lr": 5e-3,
        "warmup_steps": 0,
        "kd_weight": 1.0,
        "kd_temperature": 2.0,
        "save_every": 0,
    }
    stats = recover(model, tok, cfg, tmp_path / "kd", teacher=teacher, progress=False)
    assert stats["distill"] and stats["losses"][-1] < stats["losses"][0]
