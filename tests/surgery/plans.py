"""Random valid pruning plans for tests (the real planner lives in llmprune; this one only needs validity)."""

from __future__ import annotations

import random

from llmprune.arch import FAMILIES
from llmprune.prune.plan import BaseShape, LayerPlan, PrunePlan

SCOPES = ("block", "channel", "layer", "mix", "uniform")


def _heads(base: BaseShape, rng: random.Random, n_kv_drop: int, g_keep: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    g = base.group_size
    kv_gone = sorted(rng.sample(range(base.num_kv_heads), n_kv_drop))
    heads = []
    for kv in range(base.num_kv_heads):
        members = list(range(kv * g, (kv + 1) * g))
        heads += members if kv in kv_gone else rng.sample(members, g - g_keep)
    return tuple(sorted(heads)), tuple(kv_gone)


def _block_layer(base: BaseShape, rng: random.Random, i: int, counts: tuple[int, int, int] | None = None) -> LayerPlan:
    if counts is None:
        counts = (
            rng.randrange(base.num_kv_heads),
            rng.randint(1, base.group_size),
            rng.randrange(base.intermediate_size),
        )
    n_kv_drop, g_keep, n_mlp = counts
    heads, kv = _heads(base, rng, n_kv_drop, g_keep)
    mlp = tuple(sorted(rng.sample(range(base.intermediate_size), n_mlp)))
    return LayerPlan(layer=i, heads=heads, kv_heads=kv, mlp_channels=mlp)


def random_plan(base: BaseShape, rng: random.Random, scope: str) -> PrunePlan:
    """A random plan of `scope`: block (heads, KV heads, MLP channels per layer), channel (hidden),
    layer (dropped layers), mix (all three), uniform (the same widths in every layer)."""
    if scope not in SCOPES:
        raise ValueError(f"scope {scope!r} not in {SCOPES}")
    layers: dict[int, LayerPlan] = {}
    hidden: tuple[int, ...] = ()
    family = FAMILIES.get(base.model_type)
    if scope in ("block", "mix"):
        same_heads = family is not None and family.config_heads  # Phi-3: the same head counts in every layer
        heads = (rng.randrange(base.num_kv_heads), rng.randint(1, base.group_size))
        for i in range(base.num_layers):
            if same_heads:
                layers[i] = _block_layer(base, rng, i, (*heads, rng.randrange(base.intermediate_size)))
            elif rng.random() < 0.8:
                layers[i] = _block_layer(base, rng, i)
    if scope == "uniform":
        counts = (
            rng.randrange(base.num_kv_heads),
            rng.randint(1, base.group_size),
            rng.randrange(1, base.intermediate_size),
        )
        layers = {i: _block_layer(base, rng, i, counts) for i in range(base.num_layers)}
    if scope in ("channel", "mix"):
        hidden = tuple(sorted(rng.sample(range(base.hidden_size), rng.randint(1, base.hidden_size - 1))))
    if scope in ("layer", "mix"):
        for i in rng.sample(range(base.num_layers), rng.randint(1, base.num_layers - 1)):
            layers[i] = LayerPlan(layer=i, drop=True)
    plan = PrunePlan(base=base, layers=tuple(layers[i] for i in sorted(layers)), hidden_channels=hidden)
    plan.validate()
    return plan
