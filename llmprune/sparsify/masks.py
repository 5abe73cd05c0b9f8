"""Pruning masks from score tensors. Pure functions: True marks a weight to zero.

- `row_mask`: in each output row, the `int(in_features * sparsity)` lowest scores (Wanda's comparison group);
- `layer_mask`: the `int(numel * sparsity)` lowest scores of the whole matrix (per-layer magnitude);
- `nm_mask`: in each group of M consecutive inputs of a row, all but the N highest scores.
Ties are broken by position (as a stable sort would), so the counts are exact.
"""

from __future__ import annotations

import torch

from llmprune.errors import LlmpruneError


def lowest_k(scores: torch.Tensor, k: int) -> torch.Tensor:
    """(rows, n) scores -> bool mask of the k lowest of each row; ties go to the lower index, as with a stable
    sort. Uses `kthvalue` (linear time), several times faster than sorting on CPU."""
    if k <= 0:
        return torch.zeros_like(scores, dtype=torch.bool)
    kth = torch.kthvalue(scores, k, dim=1, keepdim=True).values
    below, tied = scores < kth, scores == kth
    need = k - below.sum(dim=1, keepdim=True)
    return below | (tied & (tied.cumsum(dim=1) <= need))


def row_mask(scores: torch.Tensor, sparsity: float) -> torch.Tensor:
    """(out, in) scores -> bool mask zeroing the lowest `int(in * sparsity)` of every row."""
    return lowest_k(scores, int(scores.shape[1] * sparsity))


def layer_mask(scores: torch.Tensor, sparsity: float) -> torch.Tensor:
    """Scores of any shape -> bool mask zeroing the lowest `int(numel * sparsity)` entries."""
    return lowest_k(scores.reshape(1, -1), int(scores.numel() * sparsity)).view_as(scores)


def nm_mask(scores: torch.Tensor, n: int, m: int) -> torch.Tensor:
    """(out, in) scores -> bool mask keeping the N highest of every M consecutive inputs of each row."""
    rows, cols = scores.shape
    if cols % m:
        raise LlmpruneError(f"pattern {n}:{m} needs an input width divisible by {m}, got {cols}")
    groups = scores.reshape(rows, cols // m, m)
    drop = torch.sort(groups, dim=2, stable=True).indices[:, :, : m - n]
    mask = torch.zeros_like(groups, dtype=torch.bool)
    mask.scatter_(2, drop, True)
    return mask.reshape(rows, cols)


def apply_mask_(weight: torch.Tensor, mask: torch.Tensor) -> None:
    """Zero `weight` where `mask` is True, in place."""
    with torch.no_grad():
        weight.masked_fill_(mask, 0.0)


def select_mask(scores: torch.Tensor, sparsity: float, nm: tuple[int, int] | None, *, per_row: bool) -> torch.Tensor:
    """The mask a method applies: N:M when a pattern is given, else per row (Wanda) or per matrix (magnitude)."""
    if nm is not None:
        return nm_mask(scores, *nm)
    return row_mask(scores, sparsity) if per_row else layer_mask(scores, sparsity)
