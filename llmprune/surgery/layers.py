"""Remove (or mask) whole decoder layers.

Removing layers renumbers the `layer_idx` of the remaining attention modules (it is their KV-cache
slot) and slices the per-layer config lists (`layer_types`); `apply.prune_` updates
`num_hidden_layers`. The masked-dense form of a removed layer zeroes its two writers to the residual
stream (o_proj and down_proj, weights and biases): the layer then adds exactly zero, i.e. it is the
identity, while the model keeps its structure (and its KV cache keeps working for generation).
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from llmprune.surgery import arch
from llmprune.surgery.linear import zero_linear_


def drop_layers_(model: nn.Module, drop: Sequence[int]) -> list[int]:
    """Delete decoder layers `drop` (current indices) and renumber the rest. Returns the kept indices."""
    dec = arch.decoder(model)
    gone = set(drop)
    kept = [i for i in range(len(dec.layers)) if i not in gone]
    if not gone:
        return kept
    dec.layers = nn.ModuleList([dec.layers[i] for i in kept])
    for new_idx, layer in enumerate(dec.layers):
        layer.self_attn.layer_idx = new_idx
        if hasattr(layer, "layer_idx"):
            layer.layer_idx = new_idx
    layer_types = getattr(model.config, "layer_types", None)
    if isinstance(layer_types, list) and len(layer_types) == len(kept) + len(gone):
        model.config.layer_types = [layer_types[i] for i in kept]
    if hasattr(dec, "has_sliding_layers") and isinstance(getattr(model.config, "layer_types", None), list):
        dec.has_sliding_layers = "sliding_attention" in model.config.layer_types
    return kept


def mask_layer_(layer: nn.Module) -> None:
    """Make `layer` the identity by zeroing its residual writers (o_proj and down_proj, with biases)."""
    for linear in (layer.self_attn.o_proj, layer.mlp.down_proj):
        zero_linear_(linear, rows=list(range(linear.out_features)))
