"""Element-level importance: pure tensor functions, no model, no hooks.

Notation: w is a parameter, g the gradient of the calibration loss w.r.t. w (summed over samples),
f the Fisher diagonal estimate sum_s (g_s * w)^2 from per-sample gradients g_s.

- `element1`:  |g * w|                      first-order Taylor, per parameter (LLM-Pruner "param_first")
- `element2`:  |g * w - 1/2 * f|            with f = sum_s (g_s * w)^2 (LLM-Pruner "param_second")
- `vector`:    g * w, signed: the structure's score is |sum over the structure| (LLM-Pruner "vectorize")
- `magnitude`: |w| (p=1) or w^2 (p=2)
- `activation`: |w_ij| * ||x_j||_2 (Wanda), x the input activations of the Linear that owns w
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # tensor methods only: importing this module (the registry does) does not load torch
    import torch


def element1(w: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    return (g.float() * w.float()).abs()


def element2(w: torch.Tensor, g: torch.Tensor, fisher: torch.Tensor) -> torch.Tensor:
    return (g.float() * w.float() - 0.5 * fisher.float()).abs()


def vector(w: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """Signed g*w; `unit_scores(..., absolute_after_sum=True)` turns it into |sum g*w| per structure."""
    return g.float() * w.float()


def magnitude(w: torch.Tensor, p: int = 1) -> torch.Tensor:
    return w.float().abs() if p == 1 else w.float().pow(2)


def activation(w: torch.Tensor, in_norm: torch.Tensor) -> torch.Tensor:
    """Wanda score |W_ij| * ||X_j||_2 for a Linear weight (out, in) and the input-feature L2 norms (in,)."""
    return w.float().abs() * in_norm.float().view(1, -1)


def unit_scores(
    elem: torch.Tensor, *, dim: int, units: int, unit_size: int, offset: int = 0, absolute_after_sum: bool = False
) -> torch.Tensor:
    """Reduce an element score tensor to one score per unit along `dim` (dim=-1: the whole tensor is 1 unit)."""
    if dim == -1:
        s = elem.sum().view(1)
        return s.abs() if absolute_after_sum else s
    x = elem.movedim(dim, 0)
    x = x[offset : offset + units * unit_size].reshape(units, -1)
    s = x.sum(dim=1)
    return s.abs() if absolute_after_sum else s
