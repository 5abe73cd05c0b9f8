"""Remove parameter slices physically: every tensor loses the given indices along the given dims.

`remove_slices_(model, slices)` takes {(parameter name, dim): indices} (what `llmprune.graph.mask.
unit_slices` returns for a plan's units) and gives each sliced parameter a new, smaller tensor holding
the kept entries, with the same dtype, device and `requires_grad`. Every name the parameter is reachable
by is re-pointed to the new one, so tied weights (lm_head = embedding) stay one tensor. Each module
whose weight shrank gets its shape attributes updated (`nn.Linear.in_features`/`out_features`,
`nn.Embedding.embedding_dim`). One extra copy of a tensor exists at a time.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from llmprune.errors import LlmpruneError
from llmprune.graph.mask import Slices
from llmprune.graph.nodes import WHOLE


def kept_indices(removed: Sequence[int], n: int) -> list[int]:
    """Indices of 0..n-1 that are not in `removed`, in ascending order."""
    gone = set(removed)
    return [i for i in range(n) if i not in gone]


def _drop(t: torch.Tensor, dim: int, removed: Sequence[int]) -> torch.Tensor:
    keep = kept_indices(removed, t.shape[dim])
    if not keep:
        raise LlmpruneError(f"removing {len(removed)} of {t.shape[dim]} entries would leave an empty tensor")
    return t.index_select(dim, torch.tensor(keep, dtype=torch.long, device=t.device))


@torch.no_grad()
def remove_slices_(model: nn.Module, slices: Slices) -> list[str]:
    """Remove `slices` from `model`'s parameters in place; returns the names of the modules changed."""
    by_param: dict[str, dict[int, Sequence[int]]] = {}
    for (name, dim), idx in slices.items():
        if dim == WHOLE:
            raise LlmpruneError(f"{name}: whole tensors are not sliced (drop the layer instead)")
        if idx:
            by_param.setdefault(name, {})[dim] = idx
    owners: dict[int, list[tuple[str, str]]] = {}  # id(param) -> every (module, attribute) holding it
    for full, p in model.named_parameters(remove_duplicate=False):
        mod, _, attr = full.rpartition(".")
        owners.setdefault(id(p), []).append((mod, attr))
    params = dict(model.named_parameters())
    changed = []
    for name, dims in by_param.items():
        old = params.pop(name)  # not kept here once replaced: each full-size tensor is freed as soon as it goes
        t = old.detach()
        for dim in sorted(dims):
            t = _drop(t, dim, dims[dim])
        new = nn.Parameter(t, requires_grad=old.requires_grad)
        for mod, attr in owners[id(old)]:
            module = model.get_submodule(mod)
            setattr(module, attr, new)
            _sync_shape_attrs(module)
            changed.append(mod)
    return sorted(set(changed))


def _sync_shape_attrs(module: nn.Module) -> None:
    if isinstance(module, nn.Linear):
        module.out_features, module.in_features = module.weight.shape
    elif isinstance(module, nn.Embedding):
        module.num_embeddings, module.embedding_dim = module.weight.shape


def rescale_norm_(
    norm: nn.Module, ratio: float, eps_attr: str, *, offset: float = 0.0, scale: float | None = None
) -> None:
    """Make a norm whose width was cut from d to d' = d / `ratio` entries equal the masked-dense norm.

    The masked-dense reference keeps d entries and holds zeros on the removed ones, so an RMSNorm
    divides by sqrt(sum_kept(x^2)/d + eps); the pruned one would divide by sqrt(sum_kept(x^2)/d' + eps).
    Since sum/d' + eps*d/d' = (d/d') * (sum/d + eps), setting eps' = eps * d/d' and scaling the norm's
    multiplier (offset + weight; offset 1 for Gemma's (1 + w)) by sqrt(d/d') makes them equal on the kept
    entries *exactly*, for every input. `scale` replaces sqrt(d/d') when the caller folds part of it into
    the next layer (a tied, scaled embedding).
    """
    factor = math.sqrt(ratio) if scale is None else scale
    w = norm.weight
    new = ((w.detach().float() + offset) * factor - offset).to(w.dtype)
    norm.weight = nn.Parameter(new, requires_grad=w.requires_grad)
    setattr(norm, eps_attr, getattr(norm, eps_attr) * ratio)
