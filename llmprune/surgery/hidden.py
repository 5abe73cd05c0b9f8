"""Remove (or mask) hidden (residual-stream) channels across the whole model.

Members of hidden channel `c`: column `c` of the token embedding (and of a tied lm_head), column `c`
of every reader of the residual stream (q/k/v/gate/up projections, lm_head), row `c` and bias entry
`c` of every writer (o_proj, down_proj), and entry `c` of every RMSNorm weight.

RMSNorm and exactness. The masked-dense reference keeps the hidden size `d` and holds zeros on the
removed channels, so its norms divide by `sqrt(sum_kept(x^2)/d + eps)`. A pruned model with `d'`
channels would divide by `sqrt(sum_kept(x^2)/d' + eps)`: plain slicing (what LLM-Pruner does)
changes every norm's output. Since
    sum/d' + eps*d/d' = (d/d') * (sum/d + eps),
setting `eps' = eps*d/d'` and scaling every norm weight by `sqrt(d/d')` makes the pruned norm equal
the masked-dense norm on the kept channels *exactly*, for every input. `config.rms_norm_eps` moves
with it, so the pruned model stays a stock model.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from torch import nn

from llmprune.plan import kept_indices
from llmprune.surgery import arch
from llmprune.surgery.linear import (
    slice_embedding,
    slice_linear,
    slice_rmsnorm_,
    zero_columns_,
    zero_linear_,
)

READERS = (
    ("self_attn", "q_proj"),
    ("self_attn", "k_proj"),
    ("self_attn", "v_proj"),
    ("mlp", "gate_proj"),
    ("mlp", "up_proj"),
)
WRITERS = (("self_attn", "o_proj"), ("mlp", "down_proj"))


def prune_hidden_(model: nn.Module, channels: Sequence[int]) -> float | None:
    """Remove hidden channels `channels` (current indices) everywhere, in place.

    Returns the new RMSNorm eps of the final norm (to store in the config), or None if nothing changed.
    """
    if not channels:
        return None
    d = arch.hidden_size(model)
    keep = kept_indices(channels, d)
    ratio = d / len(keep)
    tied = arch.embeddings_tied(model)
    dec = arch.decoder(model)
    dec.embed_tokens = slice_embedding(dec.embed_tokens, keep)
    for layer in dec.layers:
        for sub, name in READERS:
            mod = getattr(layer, sub)
            setattr(mod, name, slice_linear(getattr(mod, name), in_keep=keep))
        for sub, name in WRITERS:
            mod = getattr(layer, sub)
            setattr(mod, name, slice_linear(getattr(mod, name), out_keep=keep))
        for obj in (layer, layer.mlp):
            if hasattr(obj, "hidden_size"):
                obj.hidden_size = len(keep)
    for norm in arch.norms(model):
        slice_rmsnorm_(norm, keep, scale=math.sqrt(ratio), eps=norm.variance_epsilon * ratio)
    if tied:
        head = nn.Linear(len(keep), model.lm_head.out_features, bias=False, device="meta")
        head.weight = dec.embed_tokens.weight
        model.lm_head = head
    else:
        model.lm_head = slice_linear(model.lm_head, in_keep=keep)
    return float(dec.norm.variance_epsilon)


def mask_hidden_(model: nn.Module, channels: Sequence[int]) -> None:
    """Zero every member of hidden channels `channels` in place (see the module doc)."""
    if not channels:
        return
    dec = arch.decoder(model)
    zero_columns_(dec.embed_tokens.weight.data, channels)
    for layer in dec.layers:
        for sub, name in READERS:
            zero_linear_(getattr(getattr(layer, sub), name), cols=channels)
        for sub, name in WRITERS:
            zero_linear_(getattr(getattr(layer, sub), name), rows=channels)
    for norm in arch.norms(model):
        norm.weight.data[list(channels)] = 0.0
    zero_columns_(model.lm_head.weight.data, channels)
