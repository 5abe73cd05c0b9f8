"""llama.cpp as the reference client (opt-in: set LLMPRUNE_LLAMA_CPP=DIR holding llama-perplexity and
llama-bench, built by `python bench/llama_cpp_build.py`). Runs bench/gguf_parity.py on SmolLM2, dense and
pruned with per-layer widths (a `deci` GGUF), and checks issue #18's gaps: f32 within 0.5%, q8_0 within 2%."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from llmprune.prune.plan import BaseShape, LayerPlan, PrunePlan

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.skipif(
    not os.environ.get("LLMPRUNE_LLAMA_CPP"), reason="opt-in: set LLMPRUNE_LLAMA_CPP to a llama.cpp build"
)


def smollm2_plan(model) -> PrunePlan:
    """Per-layer widths without calibration, mild enough that the model stays a language model (a model
    broken by arbitrary cuts, PPL in the thousands, magnifies q8_0's rounding past any sensible bound):
    every layer loses its MLP channels of smallest down_proj column norm, 64 in even layers and 128 in odd
    ones; layers 24 and 27 lose one query head per KV group."""
    base = BaseShape.from_config(model.config)
    layers = []
    for i, layer in enumerate(model.model.layers):
        norms = layer.mlp.down_proj.weight.detach().norm(dim=0)
        channels = tuple(sorted(norms.argsort()[: 64 if i % 2 == 0 else 128].tolist()))
        layers.append(LayerPlan(layer=i, heads=(0, 3, 6) if i in (24, 27) else (), mlp_channels=channels))
    return PrunePlan(base=base, layers=tuple(layers), meta={"model": model.config.name_or_path})


def test_llama_perplexity_matches_llmprune(tmp_path):
    from llmprune.models import load_model
    from llmprune.surgery import prune_, save_pruned

    model, tok = load_model("smollm2-135m", dtype="float32", device="cpu")
    plan = smollm2_plan(model)
    prune_(model, plan)
    save_pruned(model, plan, tmp_path / "pruned", tokenizer=tok)
    out = tmp_path / "parity.json"
    cmd = [sys.executable, str(ROOT / "bench" / "gguf_parity.py"), "dense=smollm2-135m"]
    cmd += [f"nonuniform={tmp_path / 'pruned'}", "--chunks", "16", "--out", str(out), "--work", str(tmp_path)]
    subprocess.run(cmd, check=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    rows = json.loads(out.read_text())["rows"]
    assert {(r["model"], r["arch"]) for r in rows} == {("dense", "llama"), ("nonuniform", "deci")}
    for r in rows:
        assert abs(r["gap"]) <= (0.005 if r["outtype"] == "f32" else 0.02), r
