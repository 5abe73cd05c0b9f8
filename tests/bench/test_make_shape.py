"""bench/make_shape.py: a random stand-in of a shape loads as that shape, from bf16 shards."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[2]


def test_tiny_shape_loads_in_bf16(tiny_text_data, tmp_path, monkeypatch):
    from llmprune.models import count_params, load_model

    out = tmp_path / "shape"
    cmd = [sys.executable, str(ROOT / "bench" / "make_shape.py"), "--shape", "tiny", "--out", str(out)]
    subprocess.run(cmd, check=True, capture_output=True)
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        from make_shape import SHAPES, tensor_shapes
    finally:
        sys.path.remove(str(ROOT / "bench"))
    index = json.loads((out / "model.safetensors.index.json").read_text())
    cfg = json.loads((out / "config.json").read_text())
    assert set(index["weight_map"]) == {name for name, _ in tensor_shapes(cfg)}
    model, tok = load_model(str(out), device="cpu")  # dtype auto keeps the checkpoint's bf16 on the CPU
    assert {p.dtype for p in model.parameters()} == {torch.bfloat16}
    assert len(tok) == SHAPES["tiny"]["vocab_size"] == model.config.vocab_size
    assert count_params(model) == index["metadata"]["total_size"] // 2
    ids = tok("the quick brown fox", return_tensors="pt").input_ids
    assert ids.max() < model.config.vocab_size and torch.isfinite(model(ids).logits).all()
    with_fp32, _ = load_model(str(out), dtype="float32", device="cpu")
    assert {p.dtype for p in with_fp32.parameters()} == {torch.float32}
