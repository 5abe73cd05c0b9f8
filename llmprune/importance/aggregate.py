"""Group aggregation: combine per-member unit scores (members in execution order) into one per unit."""

from __future__ import annotations

from collections.abc import Callable

import torch

from llmprune.errors import LlmpruneError


def _sum(s: torch.Tensor) -> torch.Tensor:
    return s.sum(0)


def _mean(s: torch.Tensor) -> torch.Tensor:
    return s.mean(0)


def _max(s: torch.Tensor) -> torch.Tensor:
    return s.max(0).values


def _prod(s: torch.Tensor) -> torch.Tensor:
    # through log space in float64: a product of many small scores underflows fp32
    return s.clamp_min(1e-300).log().sum(0).exp()


def _last(s: torch.Tensor) -> torch.Tensor:
    return s[-1]


AGGREGATORS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "sum": _sum,
    "mean": _mean,
    "max": _max,
    "prod": _prod,
    "last": _last,
}


def aggregate(member_scores: list[torch.Tensor], how: str) -> torch.Tensor:
    """`member_scores[i]` holds member i's score per unit; members are in execution order."""
    if how not in AGGREGATORS:
        raise LlmpruneError(f"unknown aggregation {how!r}; choose one of {', '.join(AGGREGATORS)}")
    if not member_scores:
        raise LlmpruneError("cannot aggregate a group without members")
    return AGGREGATORS[how](torch.stack([s.double() for s in member_scores]))
