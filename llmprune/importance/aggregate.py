"""Group aggregation: combine per-member unit scores (members in execution order) into one per unit.

Reducers register by name (`@register_aggregation`); `aggregation(name)` looks one up or names the
choices. Tensor methods only until `aggregate` runs, so configs list the names without loading torch.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from llmprune.errors import LlmpruneError

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class Aggregation:
    name: str
    description: str
    reduce: Callable[[torch.Tensor], torch.Tensor]  # (members, units) -> (units,)


AGGREGATIONS: dict[str, Aggregation] = {}


def register_aggregation(name: str, description: str) -> Callable:
    """Decorator: register a reducer of a (members, units) float64 tensor under `name`."""

    def wrap(fn: Callable[[torch.Tensor], torch.Tensor]) -> Callable[[torch.Tensor], torch.Tensor]:
        if name in AGGREGATIONS:
            raise ValueError(f"aggregation {name!r} is already registered")
        AGGREGATIONS[name] = Aggregation(name, description, fn)
        return fn

    return wrap


def aggregation(name: str) -> Aggregation:
    """The aggregation called `name`, or an error listing the registered ones."""
    if name not in AGGREGATIONS:
        raise LlmpruneError(f"unknown aggregation {name!r}; choose one of {', '.join(AGGREGATIONS)}")
    return AGGREGATIONS[name]


@register_aggregation("sum", "sum over the group's members")
def _sum(s: torch.Tensor) -> torch.Tensor:
    return s.sum(0)


@register_aggregation("mean", "mean over the members")
def _mean(s: torch.Tensor) -> torch.Tensor:
    return s.mean(0)


@register_aggregation("max", "the largest member score")
def _max(s: torch.Tensor) -> torch.Tensor:
    return s.max(0).values


@register_aggregation("prod", "product of the member scores")
def _prod(s: torch.Tensor) -> torch.Tensor:
    # through log space in float64: a product of many small scores underflows fp32
    return s.clamp_min(1e-300).log().sum(0).exp()


@register_aggregation("last", "the last executing member only")
def _last(s: torch.Tensor) -> torch.Tensor:
    return s[-1]


def aggregate(member_scores: list[torch.Tensor], how: str) -> torch.Tensor:
    """`member_scores[i]` holds member i's score per unit; members are in execution order."""
    import torch

    reduce = aggregation(how).reduce
    if not member_scores:
        raise LlmpruneError("cannot aggregate a group without members")
    return reduce(torch.stack([s.double() for s in member_scores]))
