"""bench/engine_memory.py runs end to end on a tiny model folder: one row per variant, peaks measured."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_engine_memory_bench_runs(tiny_dir, tiny_text_data, tmp_path):
    src = tiny_dir("llama", heads=6, kv_heads=2, intermediate_size=96, max_position_embeddings=256)
    out = tmp_path / "memory.json"
    small = "--samples 4 --seq-len 16 --reconstruct-samples 4 --sequential-samples 4 --device cpu"
    cmd = [sys.executable, str(ROOT / "bench" / "engine_memory.py"), "--model", str(src), "--prune-args", small]
    proc = subprocess.run([*cmd, "--json", str(out)], capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = json.loads(out.read_text())["rows"]
    assert [r["variant"] for r in rows][-1] == "sequential depth --offload"
    for r in rows:
        assert r["process_peak_rss_bytes"] >= r["peak_rss_bytes"] > 0 and 0.15 < r["removed"] < 0.3
    assert "sequential depth --offload" in proc.stdout
