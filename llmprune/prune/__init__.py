"""Structured pruning: configuration, plan (data), unit costs, planner, reconstruction and the pipeline.

    from llmprune.prune import PruneConfig, prune_model
    result = prune_model(model, tokenizer, PruneConfig(ratio=0.2))   # result.plan is the PrunePlan

`PruneConfig` imports without torch (recipes validate without loading it); the rest loads on first use.
"""

from typing import Any

from llmprune.prune.config import CalibConfig, PruneConfig

__all__ = [
    "BaseShape",
    "CalibConfig",
    "LayerPlan",
    "PruneConfig",
    "PrunePlan",
    "PruneResult",
    "make_plan",
    "plan_pruning",
    "prune_model",
    "unit_costs",
]


def __getattr__(name: str) -> Any:
    if name in ("BaseShape", "LayerPlan", "PrunePlan"):
        from llmprune.prune import plan

        return getattr(plan, name)
    if name in ("PruneResult", "plan_pruning", "prune_model"):
        from llmprune.prune import pipeline

        return getattr(pipeline, name)
    if name == "make_plan":
        from llmprune.prune.planner import make_plan

        return make_plan
    if name == "unit_costs":
        from llmprune.prune.costs import unit_costs

        return unit_costs
    raise AttributeError(f"module 'llmprune.prune' has no attribute {name!r}")
