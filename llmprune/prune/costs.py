"""What removing one unit of each group kind saves: parameter counts read off the graph's groups.

The cost of a unit is the number of parameter elements its members' slices hold (every bias, norm
entry and tied tensor exactly as the model has them: a tied embedding is one member, counted once).
The planner ranks units by importance per parameter and stops once the target is removed.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from torch import nn

from llmprune.arch import Layout, describe
from llmprune.errors import LlmpruneError
from llmprune.graph.build import build_groups
from llmprune.graph.nodes import WHOLE, Group


@dataclass(frozen=True)
class Costs:
    """Parameters per unit of a model whose layers all have the same shape."""

    mlp_channel: int  # gate/up rows (+ biases), down column
    head: int  # one query head: q rows (+ bias), o columns
    kv_extra: int  # one KV head's own k and v rows (+ biases), on top of its query heads
    hidden_channel: int  # one residual channel everywhere it appears
    layer: int  # a whole decoder layer


def unit_cost(group: Group, shapes: Mapping[str, Sequence[int]]) -> int:
    """Parameter elements one unit of `group` holds (`shapes`: parameter name -> shape)."""
    total = 0
    for m in group.members:
        shape = shapes[m.name]
        numel = math.prod(shape)
        total += numel if m.dim == WHOLE else numel // shape[m.dim] * m.unit_size
    return total


def unit_costs(model: nn.Module, layout: Layout | None = None) -> Costs:
    """The `Costs` of `model` (its layers must share one shape), from the groups of its first layer."""
    lay = layout or describe(model)
    shape = lay.uniform
    if shape is None:
        raise LlmpruneError("unit costs need a model whose layers all have the same widths (the unpruned model)")
    shapes = {name: tuple(p.shape) for name, p in model.named_parameters()}
    cost = {g.kind: unit_cost(g, shapes) for g in build_groups(model, layers=range(1), layout=lay)}
    return Costs(
        mlp_channel=cost["mlp_channel"],
        head=cost["attn_head"],
        kv_extra=cost["kv_group"] - shape.group_size * cost["attn_head"],
        hidden_channel=cost["hidden"],
        layer=cost["layer"],
    )
