"""Validated configuration of a pruning job. Unknown keys and bad values raise an error naming the field.

Importance methods and aggregations are the names their registries hold (`llmprune.importance`);
importing this module does not load torch.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from llmprune.data.config import CalibConfig
from llmprune.errors import LlmpruneError
from llmprune.importance.aggregate import AGGREGATIONS, aggregation
from llmprune.importance.methods import IMPORTANCE, importance_method

__all__ = ["CalibConfig", "PruneConfig", "ReconstructCalib", "SequentialCalib"]


GRADIENT_ALLOCATIONS = ("taylor", "fisher")  # allocations that backpropagate through the whole model


class ReconstructCalib(CalibConfig):
    """Calibration of the reconstruction statistics: 64 x 128 tokens, seed 1. Its own defaults, so that a
    partial mapping (`{source: c4}`) keeps them rather than falling back to the Taylor pass's 10 x 64."""

    samples: int = Field(64, ge=1, description="number of calibration windows")
    seq_len: int = Field(128, ge=2, description="tokens per window")
    seed: int = Field(1, description="seed of the window sampling")


class SequentialCalib(CalibConfig):
    """Calibration of the sequential engine's layer-by-layer pass: 128 x 128 tokens (own defaults, as above)."""

    samples: int = Field(128, ge=1, description="number of calibration windows")
    seq_len: int = Field(128, ge=2, description="tokens per window")


class PruneConfig(BaseModel):
    """What to prune and how. `ratio` is the fraction of *total* parameters to remove (tied embedding once)."""

    model_config = ConfigDict(extra="forbid")
    ratio: float = Field(0.2, gt=0.0, lt=1.0, description="fraction of all parameters to remove, in (0, 1)")
    scope: Literal["block", "channel", "layer"] = Field(
        "block", description="block: heads + MLP channels; channel: hidden size; layer: whole decoder layers"
    )
    importance: str = Field("element1", description=f"importance method: {', '.join(IMPORTANCE)}")
    aggregate: str = Field("sum", description=f"group aggregation: {', '.join(AGGREGATIONS)}")
    layers: str | None = Field(None, description="inclusive, 0-based layer range A-B (e.g. 4-29); default: every layer")
    ranking: Literal["layer", "global"] = Field(
        "global", description="layer: same fraction in every layer of the range; global: rank units across layers"
    )
    prune_heads: bool = Field(True, description="block scope: also remove attention heads")
    prune_mlp: bool = Field(True, description="block scope: remove MLP channels")
    attn_unit: Literal["auto", "slot", "kv"] = Field(
        "auto",
        description="attention unit: slot (one query head per KV group, GQA), kv (a KV head with its query heads); "
        "auto: kv for multi-head attention, slot for GQA",
    )
    max_layer_ratio: float = Field(0.9, gt=0.0, lt=1.0, description="at most this fraction of a layer's units go")
    round_to: int = Field(1, ge=1, description="kept widths are rounded to a multiple of this (8/64/128: fast kernels)")
    uniform: bool = Field(False, description="make every layer the same shape (loadable by stock transformers)")
    calib: CalibConfig = Field(default_factory=CalibConfig)
    reconstruct: bool = Field(
        True, description="block scope: refit o_proj/down_proj on calibration activations after removing units"
    )
    reconstruct_calib: ReconstructCalib = Field(
        default_factory=ReconstructCalib,
        description="calibration windows for the reconstruction statistics",
    )
    damp: float = Field(0.01, ge=0.0, description="reconstruction ridge, relative to the mean Gram diagonal")
    engine: Literal["taylor", "sequential"] = Field(
        "taylor",
        description="taylor: one gradient pass ranks every unit, then refit; sequential: layer by layer on the "
        "pruned model's activations, units chosen by the error they cause, readers refit (block scope)",
    )
    allocation: Literal["taylor", "fisher", "error", "error-std", "depth"] = Field(
        "taylor",
        description="sequential: how many units each layer loses: taylor (today's global Taylor ranking), fisher "
        "(each unit's output error weighted by the loss's sensitivity to that output, ranked globally), error "
        "(output error relative to the layer's output), error-std (standardised per layer), depth "
        "(log-increasing with depth)",
    )
    compensate: Literal["layer", "dense"] = Field(
        "layer",
        description="sequential: refit towards the layer's own outputs on the pruned inputs (layer) or towards the "
        "dense model's outputs (dense, which also corrects what earlier layers passed on)",
    )
    bias: bool = Field(
        False,
        description="sequential: refit a bias of o_proj / down_proj too (counted in the budget; the folder then "
        "needs its modeling file)",
    )
    offload: bool | None = Field(
        None,
        description="sequential: read decoder layers one at a time from the safetensors files and write each "
        "one out pruned when it is done (only the current layer and the non-layer weights in memory); null: when "
        "the weights would take more than half the free memory",
    )
    sequential_calib: SequentialCalib = Field(
        default_factory=SequentialCalib,
        description="calibration windows of the sequential engine",
    )

    @model_validator(mode="after")
    def _engine_scope(self) -> PruneConfig:
        if self.engine == "sequential" and self.scope != "block":
            raise ValueError(f"engine sequential prunes heads and MLP channels (scope block), not scope {self.scope}")
        if self.offload and not self.can_offload:
            raise ValueError(
                "offload needs engine sequential with an allocation that takes no gradients (depth, error or "
                f"error-std); got engine {self.engine}, allocation {self.allocation}"
            )
        return self

    def calibrations(self) -> list[CalibConfig]:
        """The calibration sets this configuration reads (checked before the model loads)."""
        if self.engine == "sequential":
            return [self.calib, self.sequential_calib]
        return [self.calib, *([self.reconstruct_calib] if self.reconstruct and self.scope == "block" else [])]

    @property
    def can_offload(self) -> bool:
        """Whether layers can be read one at a time: the sequential engine without a gradient allocation."""
        return self.engine == "sequential" and self.allocation not in GRADIENT_ALLOCATIONS

    @field_validator("reconstruct_calib", "sequential_calib", mode="before")
    @classmethod
    def _calib_instance(cls, v: object) -> object:
        """A plain CalibConfig is taken as the complete set of values it holds."""
        return v.model_dump() if isinstance(v, CalibConfig) else v

    @field_validator("importance")
    @classmethod
    def _importance(cls, v: str) -> str:
        return _registered(importance_method, v)

    @field_validator("aggregate")
    @classmethod
    def _aggregate(cls, v: str) -> str:
        return _registered(aggregation, v)


def _registered(lookup, name: str) -> str:
    """`name` when the registry knows it; pydantic reports the registry's error message otherwise."""
    try:
        lookup(name)
    except LlmpruneError as e:
        raise ValueError(str(e)) from None
    return name
