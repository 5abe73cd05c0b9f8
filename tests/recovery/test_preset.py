"""Recovery sized to the device: presets, bounded data preparation, fast first-fit packing, --device."""

from __future__ import annotations

import json
import random

import pytest
import torch

from llmprune.cli.app import main
from llmprune.errors import LlmpruneError
from llmprune.recovery.config import PRESETS, RecoveryConfig
from llmprune.recovery.data import build_datasets, first_fit_rows
from llmprune.recovery.train import uses_cuda
from tests.tiny import word_tokenizer


def _scan_first_fit(lengths: list[int], cutoff: int) -> list[list[int]]:
    """The plain linear-scan first-fit-decreasing that first_fit_rows must reproduce exactly."""
    rows, space = [], []
    for i in sorted(range(len(lengths)), key=lambda i: (-lengths[i], i)):
        for r, free in enumerate(space):
            if free >= lengths[i]:
                rows[r].append(i)
                space[r] -= lengths[i]
                break
        else:
            rows.append([i])
            space.append(cutoff - lengths[i])
    return rows


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_first_fit_rows_equal_the_linear_scan(seed):
    rng = random.Random(seed)
    lengths = [rng.choice([rng.randint(1, 12), rng.randint(1, 64)]) for _ in range(rng.randint(1, 700))]
    assert first_fit_rows(lengths, 64) == _scan_first_fit(lengths, 64)
    assert first_fit_rows([], 64) == []


def test_presets_fill_only_unset_sizes():
    cpu, gpu = RecoveryConfig().resolve(cuda=False), RecoveryConfig().resolve(cuda=True)
    assert (cpu.preset, cpu.batch_size, cpu.micro_batch_size, cpu.cutoff) == ("cpu", 4, 1, 128)
    assert (gpu.preset, gpu.batch_size, gpu.micro_batch_size, gpu.cutoff) == ("gpu", 64, 4, 256)
    assert RecoveryConfig(preset="gpu").resolve(cuda=False).batch_size == PRESETS["gpu"]["batch_size"]
    mixed = RecoveryConfig(cutoff=64).resolve(cuda=True)
    assert (mixed.batch_size, mixed.cutoff) == (64, 64)
    assert RecoveryConfig(batch_size=2).resolve(cuda=True).micro_batch_size == 2  # capped at the batch
    assert RecoveryConfig(micro_batch_size=8).resolve(cuda=False).batch_size == 8
    assert cpu.resolve(cuda=True) == cpu  # decided once
    with pytest.raises(LlmpruneError, match="multiple of micro_batch_size"):
        RecoveryConfig(batch_size=6).resolve(cuda=True)


def test_steps_bound_the_examples_prepared(alpaca_file):
    tok = word_tokenizer(128)
    cfg = RecoveryConfig(data=str(alpaca_file), cutoff=64, batch_size=2, micro_batch_size=2, steps=2, val_size=3)
    train, val, info = build_datasets(tok, cfg)
    assert info["bounded_by_steps"] and 0 < info["examples"] < 45
    assert len(train) >= 2 * 2 and info["tokens"] >= 2 * 2 * 64  # enough rows for every step
    # the same examples as a full preparation limited to as many: a prefix of the same seeded order
    same, same_val, full_info = build_datasets(tok, cfg.model_copy(update={"steps": None}))
    assert not full_info["bounded_by_steps"] and full_info["examples"] == 45
    prefix, _, _ = build_datasets(tok, cfg.model_copy(update={"steps": None, "max_examples": info["examples"]}))
    assert torch.equal(prefix.input_ids, train.input_ids) and torch.equal(same_val.input_ids, val.input_ids)


def test_device_option():
    assert uses_cuda("cpu") is False
    if not torch.cuda.is_available():
        assert uses_cuda("auto") is False
        with pytest.raises(LlmpruneError, match="--device cuda: CUDA is not available"):
            uses_cuda("cuda")
    with pytest.raises(LlmpruneError, match="--device 'tpu'"):
        uses_cuda("tpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU preset")
def test_recover_cli_defaults_to_the_cpu_preset(pruned, alpaca_file, tmp_path, capsys):
    out = tmp_path / "lora"
    with pytest.raises(SystemExit) as e:
        main(["recover", str(pruned()), "--data", str(alpaca_file), "--steps", "2", "--out", str(out)])
    assert e.value.code in (None, 0)
    saved = json.loads((out / "recovery.json").read_text())
    assert {k: saved["config"][k] for k in ("preset", "batch_size", "micro_batch_size", "cutoff")} == {
        "preset": "cpu",
        **PRESETS["cpu"],
    }
    assert "training data:" in capsys.readouterr().err


def test_wrapping_in_lora_raises_no_future_warning(pruned):
    import warnings

    from llmprune.models import load_model
    from llmprune.recovery.lora import attach_lora

    model, _ = load_model(str(pruned()), device="cpu")
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)
        attach_lora(model, RecoveryConfig()).unload()
