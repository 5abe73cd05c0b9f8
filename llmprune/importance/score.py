"""Score every unit of every group: calibration -> element scores -> per-member unit scores -> aggregation."""

from __future__ import annotations

import torch
from torch import nn

from llmprune.errors import LlmpruneError
from llmprune.graph.nodes import WHOLE, Group
from llmprune.importance import taylor
from llmprune.importance.aggregate import AGGREGATORS, aggregate
from llmprune.importance.collect import collect_gradients, collect_input_norms

# calibration samples per backward pass for the batch gradient (element2 always goes one sample at a time)
GRAD_MICRO_BATCH = 8

METHODS = ("element1", "element2", "vector", "magnitude", "l2", "random", "activation")
NEEDS_GRADIENTS = {"element1", "element2", "vector"}


def check_method(method: str, how: str) -> None:
    if method not in METHODS:
        raise LlmpruneError(f"unknown importance {method!r}; choose one of {', '.join(METHODS)}")
    if how not in AGGREGATORS:
        raise LlmpruneError(f"unknown aggregation {how!r}; choose one of {', '.join(AGGREGATORS)}")


def score_groups(
    model: nn.Module,
    groups: list[Group],
    batches: torch.Tensor | None,
    *,
    method: str = "element1",
    aggregate_by: str = "sum",
    seed: int = 0,
    progress: bool = True,
) -> dict[str, torch.Tensor]:
    """Return {group.id: float64 tensor of one score per unit}; higher means more important."""
    check_method(method, aggregate_by)
    if method in NEEDS_GRADIENTS | {"activation"} and batches is None:
        raise LlmpruneError(f"importance {method!r} needs calibration data (--calib)")
    params = dict(model.named_parameters())
    names = sorted({m.name for g in groups for m in g.members})
    missing = [n for n in names if n not in params]
    if missing:
        raise LlmpruneError(f"group members not found in the model: {missing[:3]}")
    grads: dict[str, torch.Tensor] = {}
    fishers: dict[str, torch.Tensor] = {}
    norms: dict[str, torch.Tensor] = {}
    if method in NEEDS_GRADIENTS:
        grads, fishers = collect_gradients(
            model,
            batches,
            {n: params[n] for n in names},
            fisher=method == "element2",
            micro_batch=GRAD_MICRO_BATCH,
            progress=progress,
        )
    if method == "activation":
        linears = sorted({n.rsplit(".", 1)[0] for n in names if _is_linear_weight(model, n)})
        norms = collect_input_norms(model, batches, linears, progress=progress)
    gen = torch.Generator().manual_seed(seed)
    out: dict[str, torch.Tensor] = {}
    for group in groups:
        per_member = []
        for m in group.members:
            w = params[m.name].detach()
            if method == "random":
                per_member.append(torch.rand(group.units, generator=gen, dtype=torch.float64))
                continue
            elem = _element_scores(method, m.name, w, grads, fishers, norms)
            per_member.append(
                taylor.unit_scores(
                    elem,
                    dim=m.dim,
                    units=group.units if m.dim != WHOLE else 1,
                    unit_size=m.unit_size,
                    offset=m.offset,
                    absolute_after_sum=method == "vector",
                ).cpu()
            )
        out[group.id] = aggregate(per_member, aggregate_by)
    return out


def _is_linear_weight(model: nn.Module, name: str) -> bool:
    mod_name, param = name.rsplit(".", 1)
    return param == "weight" and isinstance(model.get_submodule(mod_name), nn.Linear)


def _element_scores(method, name, w, grads, fishers, norms) -> torch.Tensor:
    if method == "element1":
        return taylor.element1(w, grads[name])
    if method == "element2":
        return taylor.element2(w, grads[name], fishers[name])
    if method == "vector":
        return taylor.vector(w, grads[name])
    if method == "magnitude":
        return taylor.magnitude(w, 1)
    if method == "l2":
        return taylor.magnitude(w, 2)
    # activation (Wanda): Linear weights use |W|*||X||; other members (norms, biases, embeddings) |w|
    mod = name.rsplit(".", 1)[0]
    if mod in norms and w.dim() == 2:
        return taylor.activation(w, norms[mod])
    return taylor.magnitude(w, 1)
