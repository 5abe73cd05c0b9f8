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
from llmprune.importance.collect import collect_input_norms, reduce_gradients
from llmprune.importance.methods import ParamStats, importance_method


def activation_bytes_per_token(config, dtype: torch.dtype, *, checkpointed: bool = False) -> int:
    """A rough count of what one token's forward pass keeps for backward: per decoder layer about 12 hidden
    and 4 intermediate activations in the model's dtype (`checkpointed`: each layer's input, and one layer's
    activations while it is recomputed), and the logits (fp32, their copy and gradient)."""
    h, i = config.hidden_size, getattr(config, "intermediate_size", 4 * config.hidden_size)
    layers = config.num_hidden_layers
    layer = (12 * h + 4 * i) * torch.finfo(dtype).bits // 8
    kept = layers * h * torch.finfo(dtype).bits // 8 + layer if checkpointed else layers * layer
    return kept + 12 * config.vocab_size


def grad_micro_batch(model: nn.Module, batches: torch.Tensor, scored: list[nn.Parameter]) -> int:
    """Samples per backward pass for a gradient method (element2 goes one sample at a time anyway).

    One pass over every sample when its activations take no more memory than the scored weights' gradients:
    the gradients are then reduced and freed as they complete and never held whole (LLM-Pruner's 10 x 64
    tokens at 7B: about 4 GB of activations against 10.5 GB of gradients). Otherwise several passes hold the
    gradients in between, and each pass's activations are kept below them. The decoder layers are
    checkpointed (`checkpoint_layers`), so the activations are small: 10 x 64 tokens in one pass both at 7B
    (about 0.2 GB of activations) and for SmolLM2."""
    dtype = next(model.parameters()).dtype
    grad_bytes = sum(p.numel() * p.element_size() for p in scored)
    per_sample = activation_bytes_per_token(model.config, dtype, checkpointed=True) * batches.shape[1]
    if per_sample * batches.shape[0] <= grad_bytes:
        return batches.shape[0]
    return max(1, grad_bytes // per_sample)


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
    gen = torch.Generator().manual_seed(seed)
    if spec.needs_gradients:
        unit = _gradient_unit_scores(model, groups, batches, spec, params, progress)
    else:
        norms: dict[str, torch.Tensor] = {}
        if spec.needs == "activations":
            linears = sorted({n.rsplit(".", 1)[0] for n in names if _is_linear_weight(model, n)})
            norms = collect_input_norms(model, batches, linears, progress=progress)
        unit = {}
        for group in groups:
            for k, m in enumerate(group.members):
                if spec.element is None:  # one random score per unit
                    unit[group.id, k] = torch.rand(group.units, generator=gen, dtype=torch.float64)
                    continue
                stats = ParamStats(in_norm=norms.get(m.module) if m.param == "weight" else None)
                unit[group.id, k] = _reduce(spec.element(params[m.name].detach(), stats), group, m)
    return {g.id: aggregate([unit[g.id, k] for k in range(len(g.members))], aggregate_by) for g in groups}


def _reduce(elem: torch.Tensor, group: Group, m, signed: bool = False) -> torch.Tensor:
    """One score per unit of `group` from member `m`'s element scores (|sum| per unit when `signed`)."""
    return taylor.unit_scores(
        elem,
        dim=m.dim,
        units=group.units if m.dim != WHOLE else 1,
        unit_size=m.unit_size,
        offset=m.offset,
        absolute_after_sum=signed,
    ).cpu()


def _gradient_unit_scores(model, groups, batches, spec, params, progress) -> dict[tuple[str, int], torch.Tensor]:
    """Per-member unit scores of a gradient method, each parameter reduced as soon as its gradient is final
    (`reduce_gradients`): only the unit scores outlive the backward pass."""
    wanted: dict[str, list[tuple[Group, int]]] = {}
    for group in groups:
        for k, m in enumerate(group.members):
            wanted.setdefault(m.name, []).append((group, k))
    unit: dict[tuple[str, int], torch.Tensor] = {}

    def reduce(name: str, grad: torch.Tensor, fisher: torch.Tensor | None) -> None:
        elem = spec.element(params[name].detach(), ParamStats(grad=grad, fisher=fisher))
        for group, k in wanted[name]:
            unit[group.id, k] = _reduce(elem, group, group.members[k], spec.signed)

    scored = {n: params[n] for n in sorted(wanted)}
    reduce_gradients(
        model,
        batches,
        scored,
        reduce,
        fisher=spec.needs == "fisher",
        micro_batch=grad_micro_batch(model, batches, list(scored.values())),
        progress=progress,
    )
    return unit


def _is_linear_weight(model: nn.Module, name: str) -> bool:
    mod_name, param = name.rsplit(".", 1)
    return param == "weight" and isinstance(model.get_submodule(mod_name), nn.Linear)
