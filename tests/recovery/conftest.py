"""Tiny pruned model folders (uniform and non-uniform) and small training files for recovery tests."""

from __future__ import annotations

import json
import random

import pytest

from llmprune.prune.plan import BaseShape, LayerPlan, PrunePlan
from tests.tiny import tiny_model, word_tokenizer


def tiny_plan(base: BaseShape, kind: str) -> PrunePlan:
    """uniform: every layer loses one query head per KV group and 12 MLP channels; nonuniform: mixed widths."""
    if kind == "uniform":
        layers = tuple(LayerPlan(layer=i, heads=(1, 3), mlp_channels=tuple(range(0, 24, 2))) for i in range(3))
    else:
        layers = (
            LayerPlan(layer=0, mlp_channels=tuple(range(10))),
            LayerPlan(layer=1, heads=(1, 3), mlp_channels=tuple(range(5, 25))),
            LayerPlan(layer=2, heads=(2, 3), kv_heads=(1,), mlp_channels=(0, 7, 9)),
        )
    return PrunePlan(base=base, layers=layers, meta={"model": "tiny"})


def make_pruned(path, kind: str = "nonuniform", seed: int = 0):
    """Prune a tiny GQA llama by `tiny_plan(kind)` and save it with `save_pruned`; returns the folder."""
    from llmprune.surgery import prune_, save_pruned

    model = tiny_model("llama", heads=4, kv_heads=2, seed=seed)
    plan = tiny_plan(BaseShape.from_config(model.config), kind)
    prune_(model, plan)
    save_pruned(model, plan, path, tokenizer=word_tokenizer(128))
    return path


@pytest.fixture
def pruned(tmp_path):
    """Factory: pruned(kind="nonuniform"|"uniform") -> folder of a saved tiny pruned model."""

    def make(kind: str = "nonuniform", seed: int = 0):
        return make_pruned(tmp_path / f"pruned-{kind}-{seed}", kind, seed)

    return make


def words(rng: random.Random, n: int) -> str:
    return " ".join(f"t{rng.randrange(2, 128)}" for _ in range(n))


@pytest.fixture
def alpaca_file(tmp_path):
    rng = random.Random(0)
    records = [
        {
            "instruction": words(rng, rng.randint(2, 8)),
            "input": words(rng, rng.randint(0, 4)),
            "output": words(rng, rng.randint(3, 30)),
        }
        for _ in range(48)
    ]
    path = tmp_path / "alpaca.json"
    path.write_text(json.dumps(records))
    return path


@pytest.fixture
def text_file(tmp_path):
    rng = random.Random(1)
    path = tmp_path / "corpus.txt"
    path.write_text("\n".join(words(rng, 50) for _ in range(40)))
    return path
