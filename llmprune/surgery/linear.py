"""Slice and mask the weights of `nn.Linear`, `nn.Embedding` and RMSNorm modules.

`slice_*` return a *new, smaller* module holding the kept rows/columns, with the same dtype, device
and `requires_grad` as the original (so a model being trained keeps training). A dimension that is
kept whole is not copied (the new module shares that tensor's storage with the old one, which the
caller discards), so surgery needs at most one extra copy of the largest tensor at a time.
`zero_*` zero the given rows/columns in place (the masked-dense reference of a pruning plan).
Index lists are plain ascending lists of ints; `None` means "keep everything along that dim".
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


def _take(t: torch.Tensor, dim: int, keep: Sequence[int] | None) -> torch.Tensor:
    """Entries `keep` along `dim` (a fresh tensor), or `t` itself (detached, same storage) when None."""
    if keep is None:
        return t.detach()
    idx = torch.as_tensor(list(keep), dtype=torch.long, device=t.device)
    return t.detach().index_select(dim, idx)


def _param(data: torch.Tensor, like: nn.Parameter) -> nn.Parameter:
    return nn.Parameter(data, requires_grad=like.requires_grad)


def slice_linear(
    linear: nn.Linear, *, out_keep: Sequence[int] | None = None, in_keep: Sequence[int] | None = None
) -> nn.Linear:
    """A new `nn.Linear` holding rows `out_keep` and columns `in_keep` of `linear` (bias follows rows)."""
    w = _take(_take(linear.weight, 0, out_keep), 1, in_keep)
    new = nn.Linear(w.shape[1], w.shape[0], bias=linear.bias is not None, device="meta")
    new.weight = _param(w, linear.weight)
    if linear.bias is not None:
        new.bias = _param(_take(linear.bias, 0, out_keep), linear.bias)
    new.train(linear.training)
    return new


def slice_embedding(emb: nn.Embedding, keep: Sequence[int]) -> nn.Embedding:
    """A new `nn.Embedding` holding the embedding columns (hidden channels) `keep`."""
    w = _take(emb.weight, 1, keep)
    new = nn.Embedding(
        w.shape[0],
        w.shape[1],
        padding_idx=emb.padding_idx,
        max_norm=emb.max_norm,
        norm_type=emb.norm_type,
        scale_grad_by_freq=emb.scale_grad_by_freq,
        sparse=emb.sparse,
        device="meta",
    )
    new.weight = _param(w, emb.weight)
    new.train(emb.training)
    return new


def slice_rmsnorm_(norm: nn.Module, keep: Sequence[int], *, scale: float = 1.0, eps: float | None = None) -> None:
    """Keep channels `keep` of an RMSNorm in place, multiply its weight by `scale`, optionally set its eps.

    RMSNorm modules of llama/mistral/qwen2 hold `weight` and `variance_epsilon` only, so they are
    edited in place rather than rebuilt (their classes differ per family).
    """
    w = _take(norm.weight, 0, keep)
    if scale != 1.0:
        w = (w.float() * scale).to(w.dtype)
    norm.weight = _param(w, norm.weight)
    if eps is not None:
        norm.variance_epsilon = eps


@torch.no_grad()
def zero_linear_(
    linear: nn.Linear, *, rows: Sequence[int] | None = None, cols: Sequence[int] | None = None, bias: bool = True
) -> None:
    """Zero rows `rows` (and, when `bias`, the matching bias entries) and columns `cols`, in place."""
    if rows:
        idx = torch.as_tensor(list(rows), dtype=torch.long, device=linear.weight.device)
        linear.weight.index_fill_(0, idx, 0.0)
        if bias and linear.bias is not None:
            linear.bias.index_fill_(0, idx, 0.0)
    if cols:
        idx = torch.as_tensor(list(cols), dtype=torch.long, device=linear.weight.device)
        linear.weight.index_fill_(1, idx, 0.0)


@torch.no_grad()
def zero_columns_(weight: torch.Tensor, cols: Sequence[int]) -> None:
    """Zero columns `cols` of a 2-D weight (embedding hidden channels) in place."""
    if cols:
        weight.index_fill_(1, torch.as_tensor(list(cols), dtype=torch.long, device=weight.device), 0.0)


def head_rows(heads: Sequence[int], head_dim: int) -> list[int]:
    """Row (or column) indices of the given heads in a projection laid out head after head."""
    return [h * head_dim + j for h in heads for j in range(head_dim)]
