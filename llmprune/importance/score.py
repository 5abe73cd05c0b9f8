"""Score every unit of every group: calibration -> element scores -> per-member unit scores -> aggregation.

The method and the aggregation are looked up by name (`llmprune.importance.methods`, `.aggregate`);
what a method needs (gradients, per-sample Fisher, input activations) is gathered once for all groups.
"""

from __future__ import annotations

import torch
from torch import nn

from llmprune.errors import LlmpruneError
from llmprune.graph.nodes import WHOLE, Group
from llmprune.importance import taylor
from llmprune.importance.aggregate import aggregate, aggregation
from llmprune.importance.collect import collect_gradients, collect_input_norms
from llmprune.importance.methods import ParamStats, importance_method

# calibration samples per backward pass for the batch gradient (element2 always goes one sample at a time)
GRAD_MICRO_BATCH = 8


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
    spec = importance_method(method)
    aggregation(aggregate_by)
    if spec.needs_calibration and batches is None:
        raise LlmpruneError(f"importance {method!r} needs calibration data (--calib)")
    params = dict(model.named_parameters())
    names = sorted({m.name for g in groups for m in g.members})
    missing = [n for n in names if n not in params]
    if missing:
        raise LlmpruneError(f"group members not found in the model: {missing[:3]}")
    grads: dict[str, torch.Tensor] = {}
    fishers: dict[str, torch.Tensor] = {}
    norms: dict[str, torch.Tensor] = {}
    if spec.needs_gradients:
        grads, fishers = collect_gradients(
            model,
            batches,
            {n: params[n] for n in names},
            fisher=spec.needs == "fisher",
            micro_batch=GRAD_MICRO_BATCH,
            progress=progress,
        )
    if spec.needs == "activations":
        linears = sorted({n.rsplit(".", 1)[0] for n in names if _is_linear_weight(model, n)})
        norms = collect_input_norms(model, batches, linears, progress=progress)
    gen = torch.Generator().manual_seed(seed)
    out: dict[str, torch.Tensor] = {}
    for group in groups:
        per_member = []
        for m in group.members:
            if spec.element is None:  # one random score per unit
                per_member.append(torch.rand(group.units, generator=gen, dtype=torch.float64))
                continue
            stats = ParamStats(
                grad=grads.get(m.name),
                fisher=fishers.get(m.name),
                in_norm=norms.get(m.module) if m.param == "weight" else None,
            )
            per_member.append(
                taylor.unit_scores(
                    spec.element(params[m.name].detach(), stats),
                    dim=m.dim,
                    units=group.units if m.dim != WHOLE else 1,
                    unit_size=m.unit_size,
                    offset=m.offset,
                    absolute_after_sum=spec.signed,
                ).cpu()
            )
        out[group.id] = aggregate(per_member, aggregate_by)
    return out


def _is_linear_weight(model: nn.Module, name: str) -> bool:
    mod_name, param = name.rsplit(".", 1)
    return param == "weight" and isinstance(model.get_submodule(mod_name), nn.Linear)
