"""Validated configuration of a pruning job. Unknown keys and bad values raise an error naming the field."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from llmprune.importance.aggregate import AGGREGATORS
from llmprune.importance.score import METHODS


class CalibConfig(BaseModel):
    """Calibration data for importance: N seeded windows of L tokens (LLM-Pruner default: 10 x 64)."""

    model_config = ConfigDict(extra="forbid")
    source: str = Field("wikitext2", description="wikitext2 (valid split), c4, alpaca, ptb, or a file path")
    samples: int = Field(10, ge=1, description="number of calibration windows")
    seq_len: int = Field(64, ge=2, description="tokens per window")
    seed: int = Field(0, description="seed of the window sampling")


class PruneConfig(BaseModel):
    """What to prune and how. `ratio` is the fraction of *total* parameters to remove (tied embedding once)."""

    model_config = ConfigDict(extra="forbid")
    ratio: float = Field(0.2, gt=0.0, lt=1.0, description="fraction of all parameters to remove, in (0, 1)")
    scope: Literal["block", "channel", "layer"] = Field(
        "block", description="block: heads + MLP channels; channel: hidden size; layer: whole decoder layers"
    )
    importance: str = Field("element1", description=f"one of {', '.join(METHODS)}")
    aggregate: str = Field("sum", description=f"group aggregation, one of {', '.join(AGGREGATORS)}")
    layers: str | None = Field(None, description="inclusive layer range A-B to prune (default: all layers)")
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
    reconstruct_calib: CalibConfig = Field(
        default_factory=lambda: CalibConfig(samples=64, seq_len=128, seed=1),
        description="calibration windows for the reconstruction statistics",
    )
    damp: float = Field(0.01, ge=0.0, description="reconstruction ridge, relative to the mean Gram diagonal")

    @field_validator("importance")
    @classmethod
    def _importance(cls, v: str) -> str:
        if v not in METHODS:
            raise ValueError(f"unknown importance {v!r}; choose one of {', '.join(METHODS)}")
        return v

    @field_validator("aggregate")
    @classmethod
    def _aggregate(cls, v: str) -> str:
        if v not in AGGREGATORS:
            raise ValueError(f"unknown aggregation {v!r}; choose one of {', '.join(AGGREGATORS)}")
        return v
