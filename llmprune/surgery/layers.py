"""Remove (or mask) whole decoder layers.

Removing layers renumbers the `layer_idx` of the remaining attention modules (it is their KV-cache
slot) and slices the per-layer config lists (`layer_types`); `apply.prune_` updates
`num_hidden_layers`. The masked-dense form of a removed layer zeroes its writers to the residual
stream (o_proj and down_proj, weights and biases): the layer then adds exactly zero, i.e. it is the
identity, while the model keeps its structure (and its KV cache keeps working for generation).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from llmprune.arch import WRITERS, Layout


def drop_layers_(model: nn.Module, layout: Layout, drop: Sequence[int]) -> list[int]:
    """Delete decoder layers `drop` (current indices) and renumber the rest. Returns the kept indices."""
    fam = layout.family
    parent_name, _, attr = fam.layers.rpartition(".")
    dec = model.get_submodule(parent_name)
    layers = getattr(dec, attr)
    gone = set(drop)
    kept = [i for i in range(len(layers)) if i not in gone]
    if not gone:
        return kept
    setattr(dec, attr, nn.ModuleList([layers[i] for i in kept]))
    for new_idx, layer in enumerate(getattr(dec, attr)):
        layer.get_submodule(fam.attn).layer_idx = new_idx
        if hasattr(layer, "layer_idx"):
            layer.layer_idx = new_idx
    layer_types = getattr(model.config, "layer_types", None)
    if isinstance(layer_types, list) and len(layer_types) == len(kept) + len(gone):
        model.config.layer_types = [layer_types[i] for i in kept]
    if hasattr(dec, "has_sliding_layers") and isinstance(getattr(model.config, "layer_types", None), list):
        dec.has_sliding_layers = "sliding_attention" in model.config.layer_types
    return kept


@torch.no_grad()
def mask_layer_(model: nn.Module, layout: Layout, i: int) -> None:
    """Make layer `i` the identity by zeroing its residual writers (o_proj and down_proj, with biases)."""
    for role in WRITERS:
        linear = model.get_submodule(layout.proj(i, role))
        linear.weight.zero_()
        if linear.bias is not None:
            linear.bias.zero_()
