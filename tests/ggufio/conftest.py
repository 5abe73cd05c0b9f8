"""Tiny model folders to export: pruned (uniform / non-uniform, with or without refit biases) and dense."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
from torch import nn

from llmprune.prune.plan import BaseShape
from tests.recovery.conftest import tiny_plan
from tests.tiny import save_tiny, tiny_model, word_tokenizer


def add_writer_biases(model: nn.Module, seed: int = 1) -> None:
    """Random biases on every o_proj and down_proj (what the sequential engine's refit leaves)."""
    gen = torch.Generator().manual_seed(seed)
    for layer in model.model.layers:
        for lin in (layer.self_attn.o_proj, layer.mlp.down_proj):
            lin.bias = nn.Parameter(torch.randn(lin.out_features, generator=gen) * 0.1)


def pruned_folder(
    path, kind: str, *, family: str = "llama", biases: bool = False, base_model: str = "tiny", **model_kw
):
    """A tiny GQA model pruned by `tiny_plan(kind)`, optionally with refit biases, saved by save_pruned
    (`base_model`: what its manifest names as the model it was pruned from)."""
    from llmprune.surgery import prune_, save_pruned

    model = tiny_model(family, heads=4, kv_heads=2, **model_kw)
    plan = replace(tiny_plan(BaseShape.from_config(model.config), kind), meta={"model": base_model})
    prune_(model, plan)
    if biases:
        add_writer_biases(model)
    save_pruned(model, plan, path, tokenizer=word_tokenizer(128))
    return path


@pytest.fixture
def make_source(tmp_path):
    """Factory: make_source(name) -> folder. Names: nonuniform, uniform (+ `-bias`: refit o/down biases),
    nonuniform-allbias (biases on every projection), dense-bias (llama with attention and MLP biases), tied
    (tied embeddings), qwen2 (q/k/v biases), qwen2-nonuniform."""

    def make(name: str):
        path = tmp_path / name
        if name.startswith(("nonuniform", "uniform")):
            kind, _, bias = name.partition("-")
            if bias == "allbias":  # q/k/v/o and MLP biases from the config, per-layer widths
                return pruned_folder(path, kind, attention_bias=True, mlp_bias=True)
            return pruned_folder(path, kind, biases=bool(bias))
        if name == "qwen2-nonuniform":
            return pruned_folder(path, "nonuniform", family="qwen2")
        if name == "dense-bias":
            save_tiny(path, "llama", heads=4, kv_heads=2, attention_bias=True, mlp_bias=True)
        elif name == "tied":
            save_tiny(path, "llama", heads=4, kv_heads=2, tie_word_embeddings=True)
        else:
            save_tiny(path, name, heads=4, kv_heads=2)
        return path

    return make
