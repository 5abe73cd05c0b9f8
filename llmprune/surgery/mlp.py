"""Remove (or mask) intermediate channels of one gated MLP (gate_proj/up_proj rows, down_proj columns)."""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from llmprune.plan import kept_indices
from llmprune.surgery.linear import slice_linear, zero_linear_


def prune_mlp_(mlp: nn.Module, channels: Sequence[int]) -> None:
    """Remove intermediate channels `channels` (current indices) from `mlp`, in place."""
    if not channels:
        return
    keep = kept_indices(channels, mlp.up_proj.out_features)
    mlp.gate_proj = slice_linear(mlp.gate_proj, out_keep=keep)
    mlp.up_proj = slice_linear(mlp.up_proj, out_keep=keep)
    mlp.down_proj = slice_linear(mlp.down_proj, in_keep=keep)
    if hasattr(mlp, "intermediate_size"):
        mlp.intermediate_size = len(keep)


def mask_mlp_(mlp: nn.Module, channels: Sequence[int]) -> None:
    """Zero the members of channels `channels` in place: gate/up rows (and biases), down columns."""
    zero_linear_(mlp.gate_proj, rows=channels)
    zero_linear_(mlp.up_proj, rows=channels)
    zero_linear_(mlp.down_proj, cols=channels)
