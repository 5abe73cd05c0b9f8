"""Zero the slices a group's units own, in place: the dense-model view of removing those units.

Zeroing is what removal does for attention heads, KV heads, MLP channels and whole layers; for hidden
channels it is not (RMSNorm's mean over the hidden size changes when channels go), which is surgery's
business.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

from llmprune.errors import LlmpruneError
from llmprune.graph.nodes import WHOLE, Group


def zero_units_(model: nn.Module, group: Group, units: Iterable[int]) -> None:
    """Set every member slice of `units` (and whole members, for a layer group) to zero."""
    chosen = sorted(set(units))
    bad = [u for u in chosen if not 0 <= u < group.units]
    if bad:
        raise LlmpruneError(f"{group.id}: units {bad[:5]} out of range 0..{group.units - 1}")
    params = dict(model.named_parameters())
    with torch.no_grad():
        for m in group.members:
            p = params[m.name]
            if m.dim == WHOLE:
                if chosen:
                    p.zero_()
                continue
            idx = torch.tensor([i for u in chosen for i in m.indices(u)], dtype=torch.long, device=p.device)
            p.index_fill_(m.dim, idx, 0)
