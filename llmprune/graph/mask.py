"""The parameter slices that units of groups own, and zeroing them: the dense-model view of removal.

`unit_slices` turns (group, units) pairs into {(parameter name, dim): sorted indices} (dim `WHOLE`:
the whole tensor); surgery removes exactly these slices (`llmprune.surgery.prune_`) and `zero_units_`
zeroes them. Zeroing is what removal does for attention heads, KV heads, MLP channels and whole layers;
for hidden channels it is not (a norm's mean over the hidden size changes when channels go), which is
surgery's business.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

from llmprune.errors import LlmpruneError
from llmprune.graph.nodes import WHOLE, Group

Slices = dict[tuple[str, int], list[int]]


def unit_slices(removals: Iterable[tuple[Group, Iterable[int]]]) -> Slices:
    """{(parameter name, dim): sorted indices along dim} owned by the given units of each group.

    Overlapping members (a KV group's q rows and its query heads' q rows) are merged. A `WHOLE` member
    gives (name, WHOLE): [] (the whole tensor).
    """
    out: dict[tuple[str, int], set[int]] = {}
    for group, units in removals:
        chosen = sorted(set(units))
        bad = [u for u in chosen if not 0 <= u < group.units]
        if bad:
            raise LlmpruneError(f"{group.id}: units {bad[:5]} out of range 0..{group.units - 1}")
        if not chosen:
            continue
        for m in group.members:
            idx = out.setdefault((m.name, m.dim), set())
            if m.dim != WHOLE:
                idx.update(i for u in chosen for i in m.indices(u))
    return {k: sorted(v) for k, v in out.items()}


@torch.no_grad()
def zero_slices_(model: nn.Module, slices: Slices) -> None:
    """Set every slice to zero, in place."""
    params = dict(model.named_parameters())
    for (name, dim), idx in slices.items():
        p = params[name]
        if dim == WHOLE:
            p.zero_()
        elif idx:
            p.index_fill_(dim, torch.tensor(idx, dtype=torch.long, device=p.device), 0)


def zero_units_(model: nn.Module, group: Group, units: Iterable[int]) -> None:
    """Set every member slice of `units` (and whole members, for a layer group) to zero."""
    zero_slices_(model, unit_slices([(group, units)]))
