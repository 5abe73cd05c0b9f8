"""Two CPU processes (gloo) give the adapter one process gives: the same rows and loss per step.

`accelerate launch --cpu` starts several CPU processes only through MPI; torchrun starts them without
it, and `Accelerator` picks up the same environment (RANK, WORLD_SIZE, ...) either way, as it does
under `accelerate launch --multi_gpu` on GPUs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from llmprune.models import load_model
from llmprune.recovery import recover

ROOT = Path(__file__).resolve().parents[2]


def test_two_cpu_processes_match_one(pruned, alpaca_file, tmp_path):
    src = pruned()
    opts = {"steps": 3, "batch_size": 4, "micro_batch_size": 1, "cutoff": 64, "lr": 5e-3, "lora_dropout": 0.0}
    argv = [
        sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29517",
        "-m", "llmprune", "recover", str(src), "--out", str(tmp_path / "two"), "--data", str(alpaca_file),
    ]  # fmt: skip
    for key, value in opts.items():
        argv += [f"--{key.replace('_', '-')}", str(value)]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    model, tok = load_model(str(src), device="cpu")
    one = recover(model, tok, {**opts, "data": str(alpaca_file)}, tmp_path / "one", progress=False)
    two = json.loads((tmp_path / "two" / "recovery.json").read_text())["stats"]
    assert two["world_size"] == 2 and one["world_size"] == 1
    assert two["losses"] == pytest.approx(one["losses"], rel=1e-5)
    a = load_file(str(tmp_path / "one" / "adapter_model.safetensors"))
    b = load_file(str(tmp_path / "two" / "adapter_model.safetensors"))
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], atol=1e-5, rtol=1e-4)
