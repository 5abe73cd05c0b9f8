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

from llmprune.plan import PrunePlan


def reader_modules(plan: PrunePlan) -> dict[str, tuple[tuple[int, ...], int]]:
    """{module name: (removed units, unit size)} for every o_proj / down_proj that loses inputs."""
    out = {}
    for lp in plan.layers:
        if lp.drop:
            continue
        prefix = f"model.layers.{lp.layer}"
        if lp.mlp_channels:
            out[f"{prefix}.mlp.down_proj"] = (lp.mlp_channels, 1)
        if lp.heads:
            out[f"{prefix}.self_attn.o_proj"] = (lp.heads, plan.base.head_dim)
    return out


@torch.no_grad()
def collect_grams(
    model: nn.Module, batches: torch.Tensor, modules: list[str], *, micro_batch: int = 8, progress: bool = True
) -> dict[str, torch.Tensor]:
    """X^T X (fp32, on the model's device) of the inputs of each named Linear over all calibration tokens."""
    device = next(model.parameters()).device
    named = dict(model.named_modules())
    grams: dict[str, torch.Tensor] = {}
    handles = []
    for name in modules:
        n = named[name].in_features
        grams[name] = torch.zeros(n, n, dtype=torch.float32, device=device)

        def hook(_m, inputs, _out, name=name):
            x = inputs[0].detach().reshape(-1, inputs[0].shape[-1]).float()
            grams[name].addmm_(x.T, x)

        handles.append(named[name].register_forward_hook(hook))
    # the decoder alone: the statistics never need the LM head (a fifth of SmolLM2's forward FLOPs)
    body = model.get_decoder() if hasattr(model, "get_decoder") else model
    try:
        for i in tqdm(range(0, batches.shape[0], micro_batch), desc="reconstruction stats", disable=not progress):
            body(input_ids=batches[i : i + micro_batch].to(device), use_cache=False)
    finally:
        for h in handles:
            h.remove()
    return grams


@torch.no_grad()
def refit_columns(weight: torch.Tensor, gram: torch.Tensor, keep: torch.Tensor, damp: float) -> torch.Tensor:
    """The least-squares weight (same shape; removed columns zero) for inputs `keep` (bool mask)."""
    k = keep.nonzero().flatten()
    c = gram.double()
    ckk = c[k][:, k]
    ckk.diagonal().add_(damp * ckk.diagonal().mean().clamp_min(1e-12))
    w = weight.double()
    rhs = (w @ c[:, k]).T  # (|K|, out)
    chol, info = torch.linalg.cholesky_ex(ckk)
    sol = torch.cholesky_solve(rhs, chol) if int(info) == 0 else torch.linalg.lstsq(ckk, rhs).solution
    out = torch.zeros_like(w)
    out[:, k] = sol.T
    return out.to(weight.dtype)


@torch.no_grad()
def reconstruct_(
    model: nn.Module, plan: PrunePlan, batches: torch.Tensor, *, damp: float = 0.01, progress: bool = True
) -> list[str]:
    """Refit every Linear that reads pruned units (in place, before surgery). Returns the refitted names."""
    targets = reader_modules(plan)
    if not targets:
        return []
    grams = collect_grams(model, batches, sorted(targets), progress=progress)
    for name, (removed, unit) in targets.items():
        lin = model.get_submodule(name)
        keep = torch.ones(lin.in_features, dtype=torch.bool, device=lin.weight.device)
        for r in removed:
            keep[r * unit : (r + 1) * unit] = False
        lin.weight.copy_(refit_columns(lin.weight, grams.pop(name), keep, damp))
    return sorted(targets)
