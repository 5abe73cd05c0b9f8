"""Least-squares reconstruction of the layers that read pruned units (beyond LLM-Pruner).

Removing MLP channels (or attention heads) deletes inputs of `down_proj` (or `o_proj`). Instead of just
dropping those columns, we refit the kept columns so the layer's output changes as little as possible on
calibration activations X (tokens x inputs):

    W'_K = argmin || X W^T - X_K W'_K^T ||^2 = W C[:, K] (C[K, K] + damp * mean(diag C[K, K]) * I)^-1,

with C = X^T X the Gram matrix of the layer's inputs, K the kept inputs. The removed columns are then
zero, so the plan's surgery removes them exactly. Grams are gathered in one pass over the dense model.
"""

from __future__ import annotations

import torch
from torch import nn
from tqdm.auto import tqdm

from llmprune.activations import Gram, record_inputs
from llmprune.arch import Layout, describe
from llmprune.prune.plan import PrunePlan


def reader_modules(plan: PrunePlan, layout: Layout) -> dict[str, tuple[tuple[int, ...], int]]:
    """{module name: (removed units, unit size)} for every writer (o_proj / down_proj) that loses inputs."""
    out = {}
    for lp in plan.layers:
        if lp.drop:
            continue
        if lp.mlp_channels:
            out[layout.proj(lp.layer, "down")] = (lp.mlp_channels, 1)
        if lp.heads:
            out[layout.proj(lp.layer, "o")] = (lp.heads, plan.base.head_dim)
    return out


@torch.no_grad()
def collect_grams(
    model: nn.Module,
    batches: torch.Tensor,
    modules: list[str],
    *,
    keep: dict[str, torch.Tensor] | None = None,
    micro_batch: int = 32,
    progress: bool = True,
) -> dict[str, torch.Tensor]:
    """X^T X (fp32, on the model's device) of the inputs of each named Linear over all calibration tokens.

    With `keep` ({name: bool mask over the inputs}) only the kept columns are accumulated, X^T X_K
    (inputs x kept): all the least-squares refit needs, and cheaper by the removed fraction.
    """
    device = next(model.parameters()).device
    keep = keep or {}
    stats = {name: Gram(model.get_submodule(name).in_features, keep.get(name), device) for name in modules}
    # the decoder alone: the statistics never need the LM head (a fifth of SmolLM2's forward FLOPs)
    body = model.get_decoder() if hasattr(model, "get_decoder") else model
    with record_inputs(model, stats):
        for i in tqdm(range(0, batches.shape[0], micro_batch), desc="reconstruction stats", disable=not progress):
            body(input_ids=batches[i : i + micro_batch].to(device), use_cache=False)
    return {name: stat.matrix for name, stat in stats.items()}


@torch.no_grad()
def refit_columns(weight: torch.Tensor, gram: torch.Tensor, keep: torch.Tensor, damp: float) -> torch.Tensor:
    """The least-squares weight (same shape; removed columns zero) for inputs `keep` (bool mask).

    `gram` is X^T X (inputs x inputs) or just its kept columns X^T X_K (inputs x kept).
    """
    k = keep.nonzero().flatten()
    c_k = (gram if gram.shape[1] == k.numel() else gram[:, k]).float()  # C[:, K]
    ckk = c_k[k]
    ckk.diagonal().add_(damp * ckk.diagonal().mean().clamp_min(1e-12))
    w = weight.float()
    rhs = (w @ c_k).T  # (|K|, out)
    # fp32 Cholesky (the ridge keeps C_KK well conditioned; relative error ~1e-5 against fp64 on SmolLM2),
    # fp64 least squares when it is not positive definite
    chol, info = torch.linalg.cholesky_ex(ckk)
    if int(info) == 0:
        sol = torch.cholesky_solve(rhs, chol)
    else:
        sol = torch.linalg.lstsq(ckk.double(), rhs.double()).solution.float()
    out = torch.zeros_like(w)
    out[:, k] = sol.T
    return out.to(weight.dtype)


@torch.no_grad()
def reconstruct_(
    model: nn.Module, plan: PrunePlan, batches: torch.Tensor, *, damp: float = 0.01, progress: bool = True
) -> list[str]:
    """Refit every Linear that reads pruned units (in place, before surgery). Returns the refitted names."""
    targets = reader_modules(plan, describe(model))
    if not targets:
        return []
    keeps = {}
    for name, (removed, unit) in targets.items():
        lin = model.get_submodule(name)
        keep = torch.ones(lin.in_features, dtype=torch.bool, device=lin.weight.device)
        for r in removed:
            keep[r * unit : (r + 1) * unit] = False
        keeps[name] = keep
    grams = collect_grams(model, batches, sorted(targets), keep=keeps, progress=progress)
    for name, keep in keeps.items():
        lin = model.get_submodule(name)
        lin.weight.copy_(refit_columns(lin.weight, grams.pop(name), keep, damp))
    return sorted(targets)
