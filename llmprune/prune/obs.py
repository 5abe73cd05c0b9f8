"""Error-aware unit removal for one Linear that reads pruned units (o_proj, down_proj): pure tensor maths.

The Linear computes Y = X W^T + b over calibration inputs X (tokens x f). Removing a block K of input
columns and refitting the kept ones (and the bias: a constant input column, FLAP's mean compensation is
its special case) by least squares raises the squared error of Y by (Optimal Brain Surgeon, per block)

    dE(K) = tr( W~_K [C~^-1]_KK^-1 W~_K^T ),

with C~ = [X 1]^T [X 1] the Gram matrix of the inputs augmented by the constant column, W~ = [W b]
(`augment`). Removing K updates the inverse of the kept columns' Gram by a Schur complement
(`remove_`), so units go greedily, in batches, each choice seeing the effect of the ones before it.
`refit` solves the least-squares problem for the kept columns and the bias, towards the layer's own
outputs (`cross=None`) or towards given targets (the dense model's outputs: `cross = [X 1]^T Y_dense`).

All matrices are float64 (f up to a few thousand on a CPU; the ridge `damp` keeps them well conditioned).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch


def augment(xtx: torch.Tensor, xsum: torch.Tensor, count: int) -> torch.Tensor:
    """The (f+1) x (f+1) Gram matrix of [X 1] from X^T X, the column sums of X and the number of rows."""
    f = xtx.shape[0]
    out = torch.empty(f + 1, f + 1, dtype=torch.float64, device=xtx.device)
    out[:f, :f] = xtx
    out[:f, f] = out[f, :f] = xsum
    out[f, f] = count
    return out


def ridge(gram: torch.Tensor, damp: float) -> float:
    """The ridge added to the diagonal: `damp` times the mean of the Gram matrix's diagonal."""
    return damp * float(gram.diagonal().double().mean().clamp_min(1e-12))


def damped_inverse(gram: torch.Tensor, lam: float) -> torch.Tensor:
    """(C + lam * I)^-1 in float64."""
    c = gram.double().clone()
    c.diagonal().add_(lam)
    return torch.linalg.inv(c)


def block_errors(weight: torch.Tensor, cinv: torch.Tensor, blocks: Sequence[Sequence[int]]) -> torch.Tensor:
    """dE of removing each block alone: tr(W_K [C^-1]_KK^-1 W_K^T), W (out x f) and C^-1 over the same
    columns. Blocks of one column reduce to ||W_k||^2 / [C^-1]_kk."""
    w = weight.double()
    if all(len(b) == 1 for b in blocks):
        idx = torch.tensor([b[0] for b in blocks], device=w.device)
        return w[:, idx].pow(2).sum(0) / cinv.diagonal()[idx]
    out = []
    for b in blocks:
        idx = torch.tensor(list(b), device=w.device)
        wk = w[:, idx]
        out.append(torch.trace(wk @ torch.linalg.solve(cinv[idx][:, idx], wk.T)))
    return torch.stack(out)


def remove_(cinv: torch.Tensor, weight: torch.Tensor, removed: Sequence[int]) -> None:
    """After removing columns `removed`: update `cinv` to the inverse Gram of the kept columns (removed rows
    and columns become 0) and `weight` to the optimal refit of the kept columns (removed columns 0), in
    place. The OBS update: delta W = -W_K [C^-1]_KK^-1 [C^-1]_K,: ."""
    k = torch.tensor(list(removed), device=cinv.device)
    inv_kk = torch.linalg.inv(cinv[k][:, k])
    rows = cinv[k]  # |K| x f
    weight.sub_(weight[:, k] @ inv_kk @ rows)
    cinv.sub_(rows.T @ inv_kk @ rows)
    weight[:, k] = 0
    cinv[k] = 0
    cinv[:, k] = 0


def refit(
    gram: torch.Tensor, weight: torch.Tensor, keep: torch.Tensor, lam: float, cross: torch.Tensor | None = None
) -> torch.Tensor:
    """Least-squares weights (same shape as `weight`, removed columns 0) of the kept columns `keep` (bool
    mask over the columns of the augmented `gram`): towards the layer's own outputs X~ W~^T when `cross`
    is None, else towards the targets whose cross-products X~^T Y are `cross` ((f+1) x out). The ridge
    `lam` pulls towards the current weights (not towards 0), so towards the layer's own outputs this is
    exactly what the OBS updates of `remove_` reach with the same ridge."""
    k = keep.nonzero().flatten()
    g, w = gram.double(), weight.double()
    rhs = (g @ w.T) if cross is None else cross.double()
    ckk = g[k][:, k].clone()
    ckk.diagonal().add_(lam)
    rhs = rhs[k] + lam * w[:, k].T
    out = torch.zeros_like(weight, dtype=torch.float64)
    out[:, k] = torch.linalg.solve(ckk, rhs).T
    return out
