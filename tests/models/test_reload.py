"""Loading a just-written folder back before it is renamed into place: logits, or every tensor on the CPU."""

from __future__ import annotations

import random

import pytest
import torch

from llmprune.errors import LlmpruneError
from llmprune.models.reload import model_bytes, reload_fits, reload_plan
from llmprune.prune.plan import BaseShape
from llmprune.surgery import load_pruned, prune_, save_pruned
from tests.surgery.plans import random_plan

IDS = torch.tensor([[5, 17, 99, 3, 64, 2, 120, 7, 8, 31]])


def _pruned(make_tiny, family, kw, scope, seed=0):
    model = make_tiny(family, **kw)
    plan = random_plan(BaseShape.from_config(model.config), random.Random(f"io-{family}-{scope}-{seed}"), scope)
    return prune_(model, plan), plan


@pytest.mark.parametrize("family,kw", [("llama", dict(heads=4, kv_heads=2)), ("qwen2", dict(tie_word_embeddings=True))])
def test_reload_checked_tensor_by_tensor_when_the_gpu_has_no_room(make_tiny, tmp_path, monkeypatch, family, kw):
    """Without room for a second copy on the GPU, the folder is loaded on the CPU and compared bit for bit."""
    from llmprune.models import reload
    from llmprune.surgery import io

    pruned, plan = _pruned(make_tiny, family, kw, "block")
    monkeypatch.setattr(reload, "reload_plan", lambda model: (torch.device("cpu"), "weights"))
    out = save_pruned(pruned, plan, tmp_path / "out")
    torch.testing.assert_close(load_pruned(out)(IDS).logits, pruned(IDS).logits, atol=1e-5, rtol=0)
    real = io.load_pruned

    def one_weight_off(*args, **kwargs):
        model = real(*args, **kwargs)
        with torch.no_grad():
            model.model.layers[1].mlp.down_proj.weight[0, 0] += 1e-6
        return model

    monkeypatch.setattr(io, "load_pruned", one_weight_off)
    with pytest.raises(LlmpruneError, match="different model.layers.1.mlp.down_proj.weight; nothing was written"):
        save_pruned(pruned, plan, tmp_path / "other")
    assert not (tmp_path / "other").exists()


def test_reload_room_and_model_bytes(make_tiny):
    gib = 2**30
    assert reload_fits(10 * gib, 8 * gib) and not reload_fits(8 * gib, 8 * gib)
    assert reload_fits(22 * gib, 10 * gib, cpu=True) and not reload_fits(12 * gib, 10 * gib, cpu=True)
    tied = make_tiny("qwen2", tie_word_embeddings=True)
    unique = {p.data_ptr(): p for p in tied.parameters()}.values()
    assert (
        model_bytes(tied) == sum(p.numel() * 4 for p in unique) < sum(t.numel() * 4 for t in tied.state_dict().values())
    )
    assert reload_plan(tied) == (torch.device("cpu"), "logits")  # on the CPU, with room for a second copy


def test_without_room_for_a_second_copy_the_files_are_read_back_tensor_by_tensor(make_tiny, tmp_path, monkeypatch):
    """A model too large to load twice (7B on a 24 GB machine) is checked from its files, one tensor at a time."""
    from llmprune.models import reload
    from llmprune.perf import memory
    from llmprune.surgery import io

    pruned, plan = _pruned(make_tiny, "qwen2", dict(tie_word_embeddings=True), "block")
    monkeypatch.setattr(memory, "free_memory", lambda device: model_bytes(pruned))  # no room on the CPU
    assert reload_plan(pruned) == (torch.device("cpu"), "files")

    def never(*args, **kwargs):
        raise AssertionError("a second model was built")

    monkeypatch.setattr(io, "load_pruned", never)
    out = save_pruned(pruned, plan, tmp_path / "out")
    monkeypatch.undo()
    torch.testing.assert_close(load_pruned(out)(IDS).logits, pruned(IDS).logits, atol=1e-5, rtol=0)
    files = io.RunFolder(out).weight_files()
    reload.verify_files(files, pruned)
    with torch.no_grad():
        pruned.model.layers[0].mlp.up_proj.weight[1, 2] += 1e-6
    with pytest.raises(LlmpruneError, match="different model.layers.0.mlp.up_proj.weight"):
        reload.verify_files(files, pruned)
    with pytest.raises(LlmpruneError, match="lacks model.embed_tokens.weight, model.layers.0"):
        reload.verify_files([], pruned)
