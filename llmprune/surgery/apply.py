"""Replay a `PrunePlan` on a model: `prune_` (physically smaller) and `mask_` (masked-dense reference).

    >>> plan = PrunePlan.load("plan.json")
    >>> prune_(model, plan)            # in place; model.config now states the new shapes
    >>> save_pruned(model, plan, "out/")

Both go through the graph's groups (`llmprune.graph`): the plan names units of groups
(`PrunePlan.removed_units`), `llmprune.graph.mask.unit_slices` turns them into parameter slices, and
`prune_` removes exactly those slices while `mask_` zeroes them, keeping all shapes. The masked model's
logits equal the pruned model's (tests/surgery check it to 1e-5 in fp32). Both validate the plan against
the model's current tensor shapes first, and change nothing when it does not apply.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from llmprune.arch import Layout, describe, set_embed_scale_, set_layer_shape_
from llmprune.errors import LlmpruneError
from llmprune.graph.build import build_groups
from llmprune.graph.mask import Slices, unit_slices, zero_slices_
from llmprune.prune.plan import BaseShape, PrunePlan
from llmprune.surgery.layers import drop_layers_, mask_layer_
from llmprune.surgery.shapes import sync_config_
from llmprune.surgery.slicing import remove_slices_, rescale_norm_


def current_shape(model: nn.Module) -> BaseShape | None:
    """The model's shape read from its tensors, or None when its layers differ in width."""
    layout = describe(model)
    return BaseShape.from_layout(layout) if layout.uniform is not None else None


def check_plan(model: nn.Module, plan: PrunePlan) -> Layout:
    """Raise LlmpruneError unless `plan` is valid and was made for a model of this shape; returns its layout."""
    if not isinstance(plan, PrunePlan):
        raise LlmpruneError(f"expected a PrunePlan, got {type(plan).__name__}; load one with PrunePlan.load(path)")
    plan.validate()
    layout = describe(model)
    shape = BaseShape.from_layout(layout)
    if shape != plan.base:
        diff = ", ".join(
            f"{k} {getattr(plan.base, k)} vs {getattr(shape, k)}"
            for k in shape.__dataclass_fields__
            if getattr(plan.base, k) != getattr(shape, k)
        )
        raise LlmpruneError(
            f"the plan was made for another model shape (plan vs model: {diff}); make the plan on this model"
        )
    return layout


def plan_slices(model: nn.Module, layout: Layout, plan: PrunePlan) -> Slices:
    """The parameter slices the plan's units own (dropped layers excluded: they go whole)."""
    groups = {g.id: g for g in build_groups(model, layout=layout)}
    return unit_slices((groups[gid], units) for gid, units in plan.removed_units().items())


@torch.no_grad()
def prune_(model: nn.Module, plan: PrunePlan) -> nn.Module:
    """Apply `plan` to `model` in place and return it; every shape-dependent attribute and config field is
    updated.

    The slices of the removed heads, KV heads, MLP channels and hidden channels go at once (all indices
    refer to the original model, which `check_plan` guarantees `model` is); every norm whose width
    shrank is rescaled (`rescale_norm_`: exact) — the hidden norms when hidden channels went, OLMo 2's
    q/k norms when heads went — and a scaled embedding (Gemma) keeps its values; then dropped layers go.
    `model.config` afterwards holds the true shapes when they fit a stock config, else a valid skeleton
    (see `llmprune.surgery.shapes`). Works on any device and dtype; `requires_grad` flags are kept.
    """
    layout = check_plan(model, plan)
    fam = layout.family
    norms = list(layout.hidden_norms()) + [n for i in range(layout.num_layers) for n, _ in layout.proj_norms(i)]
    widths = {n: model.get_submodule(n).weight.shape[0] for n in norms}
    remove_slices_(model, plan_slices(model, layout, plan))
    lm_scale = _scale_embedding_(model, layout, plan) if plan.hidden_channels else 1.0
    _rescale_shrunk_norms_(model, layout, widths, lm_scale)
    hidden = layout.hidden_size - len(plan.hidden_channels)
    for i in range(layout.num_layers):  # before reading the model again: a fused q/k/v splits by these
        set_layer_shape_(model.get_submodule(layout.layer(i)), fam, plan.shape_of(i), hidden=hidden)
    drop_layers_(model, layout, plan.dropped_layers)
    sync_config_(model)
    return model


def _rescale_shrunk_norms_(model: nn.Module, layout: Layout, widths: dict[str, int], lm_scale: float = 1.0) -> None:
    """Rescale every norm of `widths` (name -> width before) whose width shrank (`rescale_norm_`: exact)."""
    fam = layout.family
    for name, old in widths.items():  # hidden norms, OLMo 2's q/k norms
        norm = model.get_submodule(name)
        ratio = old / norm.weight.shape[0]
        if ratio != 1.0:
            scale = math.sqrt(ratio) / lm_scale if name == fam.final_norm else None
            rescale_norm_(norm, ratio, fam.norm_eps, offset=fam.norm_offset, scale=scale)


@torch.no_grad()
def prune_layer_(model: nn.Module, layout: Layout, plan: PrunePlan, i: int) -> None:
    """Remove what `plan` removes from decoder layer `i` alone (heads, KV groups, MLP channels), in place:
    what `prune_` does to that layer, for a model whose layers are pruned (and written out) one at a time
    (offload). `layout` is the unpruned model's; other layers may be pruned already or on the meta device.
    Plans that remove hidden channels or whole layers change every layer at once: LlmpruneError."""
    if plan.hidden_channels or plan.dropped_layers:
        raise LlmpruneError("a plan removing hidden channels or layers cannot be applied one layer at a time")
    kinds = {"attn_head", "kv_group", "mlp_channel"}
    groups = {g.id: g for g in build_groups(model, layers=range(i, i + 1), kinds=kinds, layout=layout)}
    units = [(groups[gid], u) for gid, u in plan.removed_units().items() if gid in groups]
    widths = {n: model.get_submodule(n).weight.shape[0] for n, _ in layout.proj_norms(i)}
    remove_slices_(model, unit_slices(units))
    _rescale_shrunk_norms_(model, layout, widths)
    set_layer_shape_(model.get_submodule(layout.layer(i)), layout.family, plan.shape_of(i), hidden=layout.hidden_size)


def _scale_embedding_(model: nn.Module, layout: Layout, plan: PrunePlan) -> float:
    """For families that multiply embeddings by sqrt(hidden size) (Gemma): keep the embeddings' values.

    A reloaded model multiplies by sqrt(d') of its new hidden size d'; the weights are scaled by
    c = sqrt(d/d') so that sqrt(d') * c * W = sqrt(d) * W, and the module's scale is set to sqrt(d').
    Returns the factor the lm_head weight received (c when it is the tied embedding, else 1), which the
    final norm then leaves out.
    """
    fam = layout.family
    if not fam.scaled_embedding:
        return 1.0
    d, kept = layout.hidden_size, layout.hidden_size - len(plan.hidden_channels)
    embed = model.get_submodule(fam.embed)
    c = math.sqrt(d / kept)
    embed.weight.mul_(c)
    set_embed_scale_(embed, fam, kept)
    return c if layout.tied else 1.0


@torch.no_grad()
def mask_(model: nn.Module, plan: PrunePlan) -> nn.Module:
    """Zero the members of every unit `plan` removes, in place, keeping all shapes (masked-dense reference).

    Removed heads: q rows, k/v rows of removed KV heads, o_proj columns. Removed MLP channels:
    gate/up rows, down_proj columns. Removed hidden channels: embedding columns, reader columns, writer
    rows and biases, norm entries. Dropped layers: o_proj and down_proj zeroed, so the layer adds
    nothing to the residual stream (identity). The config is not touched.
    """
    layout = check_plan(model, plan)
    zero_slices_(model, plan_slices(model, layout, plan))
    for i in plan.dropped_layers:
        mask_layer_(model, layout, i)
    return model
