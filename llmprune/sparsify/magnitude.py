"""Per-layer magnitude pruning: in every selected weight matrix, zero the lowest |W| (or N:M groups)."""

from __future__ import annotations

import torch
from torch import nn
from tqdm.auto import tqdm

from llmprune.sparsify.masks import apply_mask_, select_mask
from llmprune.sparsify.targets import check_pattern_fits, layer_targets, target_linears


@torch.no_grad()
def magnitude_(
    model: nn.Module, sparsity: float, nm: tuple[int, int] | None = None, *, progress: bool = True
) -> nn.Module:
    """Zero `int(numel * sparsity)` lowest-|W| weights of each q/k/v/o/gate/up/down matrix, in place.
    With `nm=(N, M)` keep the N largest |W| of every M consecutive inputs of each row instead."""
    if nm is not None:
        check_pattern_fits(target_linears(model), nm[1])
    for _, linears in tqdm(layer_targets(model), desc="magnitude", unit="layer", disable=not progress):
        for lin in linears.values():
            apply_mask_(lin.weight, select_mask(lin.weight.abs(), sparsity, nm, per_row=False))
    return model
