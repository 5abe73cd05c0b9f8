"""Replay a `PrunePlan` on a model: `prune_` (physically smaller) and `mask_` (masked-dense reference).

    >>> plan = PrunePlan.load("plan.json")
    >>> prune_(model, plan)            # in place; model.config now states the new shapes
    >>> save_pruned(model, plan, "out/")

`mask_(copy, plan)` zeroes the members of every removed unit instead, keeping all shapes; its logits
equal the pruned model's (tests/surgery check it to 1e-5 in fp32). Both validate the plan against the
model's current tensor shapes first, and change nothing when it does not apply.
"""

from __future__ import annotations

import torch
from torch import nn

from llmprune.errors import LlmpruneError
from llmprune.plan import BaseShape, PrunePlan
from llmprune.surgery import arch
from llmprune.surgery.attention import mask_heads_, prune_heads_
from llmprune.surgery.hidden import mask_hidden_, prune_hidden_
from llmprune.surgery.layers import drop_layers_, mask_layer_
from llmprune.surgery.mlp import mask_mlp_, prune_mlp_
from llmprune.surgery.shapes import sync_config_


def current_shape(model: nn.Module) -> BaseShape | None:
    """The model's shape read from its tensors, or None when its layers differ in width."""
    arch.check_supported(model)
    widths = arch.all_widths(model)
    if len(set(widths)) != 1:
        return None
    w = widths[0]
    return BaseShape(
        model_type=model.config.model_type,
        num_layers=len(widths),
        hidden_size=arch.hidden_size(model),
        num_heads=w.num_attention_heads,
        num_kv_heads=w.num_key_value_heads,
        head_dim=arch.head_dim(model),
        intermediate_size=w.intermediate_size,
    )


def check_plan(model: nn.Module, plan: PrunePlan) -> None:
    """Raise LlmpruneError unless `plan` is valid and was made for a model of this shape."""
    if not isinstance(plan, PrunePlan):
        raise LlmpruneError(f"expected a PrunePlan, got {type(plan).__name__}; load one with PrunePlan.load(path)")
    plan.validate()
    shape = current_shape(model)
    if shape is None:
        raise LlmpruneError(
            "this model's layers already have different widths (it was pruned non-uniformly); a plan describes "
            "a uniform base model: make the plan on the original model instead"
        )
    if shape != plan.base:
        diff = ", ".join(
            f"{k} {getattr(plan.base, k)} vs {getattr(shape, k)}"
            for k in shape.__dataclass_fields__
            if getattr(plan.base, k) != getattr(shape, k)
        )
        raise LlmpruneError(
            f"the plan was made for another model shape (plan vs model: {diff}); make the plan on this model"
        )


@torch.no_grad()
def prune_(model: nn.Module, plan: PrunePlan) -> nn.Module:
    """Apply `plan` to `model` in place and return it; every shape-dependent config field is updated.

    Order: heads and MLP channels per layer, then hidden channels model-wide, then dropped layers
    (the plan's indices all refer to the original model, which `check_plan` guarantees is `model`).
    `model.config` afterwards holds the true shapes when they fit a stock config, else a valid skeleton
    (see `llmprune.surgery.shapes`). Works on any device and dtype; `requires_grad` flags are kept.
    """
    check_plan(model, plan)
    layers = arch.layers(model)
    for lp in plan.layers:
        if lp.drop:
            continue
        prune_heads_(layers[lp.layer].self_attn, lp.heads, lp.kv_heads)
        prune_mlp_(layers[lp.layer].mlp, lp.mlp_channels)
    prune_hidden_(model, plan.hidden_channels)
    drop_layers_(model, plan.dropped_layers)
    sync_config_(model)
    return model


@torch.no_grad()
def mask_(model: nn.Module, plan: PrunePlan) -> nn.Module:
    """Zero the members of every unit `plan` removes, in place, keeping all shapes (masked-dense reference).

    Removed heads: q rows, k/v rows of removed KV heads, o_proj columns. Removed MLP channels:
    gate/up rows, down_proj columns. Removed hidden channels: embedding columns, reader columns, writer
    rows and biases, norm entries. Dropped layers: o_proj and down_proj zeroed, so the layer adds
    nothing to the residual stream (identity). The config is not touched.
    """
    check_plan(model, plan)
    layers = arch.layers(model)
    for lp in plan.layers:
        if lp.drop:
            mask_layer_(layers[lp.layer])
            continue
        mask_heads_(layers[lp.layer].self_attn, lp.heads, lp.kv_heads)
        mask_mlp_(layers[lp.layer].mlp, lp.mlp_channels)
    mask_hidden_(model, plan.hidden_channels)
    return model
