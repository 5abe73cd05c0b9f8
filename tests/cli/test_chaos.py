"""Chaos: `llmprune prune` killed (SIGKILL) at seeded random moments never leaves a half-written --out.

After each kill, --out is the previous output (absent only before any run finished), or a complete new one that loads and computes what the
first run's output computes; the next run sweeps what the killed ones left, so at the end no temporary remains.
"""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch

from llmprune.models import load_model
from llmprune.ownership import owner_kind

KILLS = 10
IDS = torch.tensor([[3, 9, 27, 81, 4, 12, 36, 108]])


def _logits(folder: Path) -> torch.Tensor:
    model, _ = load_model(str(folder), device="cpu")
    with torch.no_grad():
        return model(IDS).logits


def _snapshot(folder: Path) -> dict[str, bytes] | None:
    if not folder.exists():
        return None
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _temporaries(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if "llmprune-tmp" in p.name or ".tmp-" in p.name)


def test_prune_killed_at_random_moments(tiny_dir, tiny_text_data, tmp_path):
    src = tiny_dir(num_hidden_layers=2)
    out = tmp_path / "work" / "out"
    out.parent.mkdir()
    argv = [sys.executable, "-m", "llmprune", "prune", str(src), "--out", str(out)]
    argv += ["--samples", "2", "--seq-len", "16", "--reconstruct-samples", "2"]
    t0 = time.perf_counter()
    subprocess.run(argv, check=True, capture_output=True)
    duration = time.perf_counter() - t0
    reference = _logits(out)
    rng = random.Random(0)
    outcomes = []
    for _ in range(KILLS):
        before = _snapshot(out)
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.0, duration * 1.1))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        after = _snapshot(out)
        if after is None:
            outcomes.append("absent")
        elif after == before:
            outcomes.append("previous")
        else:  # a complete new output: marked, loads, same model
            assert owner_kind(out) == "run"
            torch.testing.assert_close(_logits(out), reference, rtol=0, atol=0)
            outcomes.append("new")
    done = subprocess.run(argv, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert _temporaries(tmp_path) == [], outcomes
    torch.testing.assert_close(_logits(out), reference, rtol=0, atol=0)
    assert "absent" not in outcomes  # the first run's output existed: it is only ever exchanged for a new one
