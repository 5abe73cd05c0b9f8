"""Settings of an unstructured / semi-structured sparsification run, validated up front.

`SparsifyConfig(method=, sparsity=, pattern=, calib=, sequential=)` (`sparsify_config` for CLI-style errors):
- `method`: `magnitude` (lowest |W| of each weight matrix), `wanda` (lowest |W_ij| * ||X_j||_2 of each
  output row, activations from calibration) or `global-magnitude` (`torch.nn.utils.prune.global_unstructured`
  with L1 over all selected Linear layers, made permanent with `prune.remove`).
- `sparsity`: fraction of weights set to zero, in [0, 1) (default 0.5, or implied by the pattern).
- `pattern` `"N:M"`: semi-structured sparsity in the NVIDIA sense: in every group of M consecutive input
  weights of an output row at most N are non-zero (the N largest scores are kept, M - N are zeroed).
  The sparsity is then implied, 1 - N/M (2:4 and 4:8 zero half of the weights); passing a different
  `sparsity` with a pattern is an error. Every selected layer's input width must be a multiple of M.
- `sequential` (Wanda): statistics of layer i from the already-pruned layers 0..i-1 (locuslab/wanda's
  loop), or, when False, from the dense model in a single forward pass.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from llmprune.data.config import CalibConfig
from llmprune.errors import LlmpruneError, as_option, validate_config

METHODS: tuple[str, ...] = ("magnitude", "wanda", "global-magnitude")
NEEDS_CALIBRATION: tuple[str, ...] = ("wanda",)
DEFAULT_SPARSITY = 0.5


def parse_pattern(pattern: str | None) -> tuple[int, int] | None:
    """`"2:4"` -> (2, 4): keep N of every M consecutive inputs. None or "" -> None (unstructured)."""
    if pattern is None or not str(pattern).strip():
        return None
    parts = str(pattern).strip().split(":")
    try:
        n, m = (int(p) for p in parts)
    except ValueError:
        raise LlmpruneError(
            f"invalid --pattern {pattern!r}; write N:M with integers, e.g. 2:4 or 4:8 (keep N of every M weights)"
        ) from None
    if not 0 < n < m:
        raise LlmpruneError(
            f"invalid --pattern {pattern!r}: need 0 < N < M (N weights kept of every M); e.g. 2:4 or 4:8"
        )
    return n, m


WANDA_CALIB: dict = {"source": "c4", "samples": 128, "seq_len": 2048, "seed": 0}  # the Wanda paper's setting


def wanda_calib(**overrides) -> CalibConfig:
    """The calibration windows Wanda uses (`llmprune.data.CalibConfig` with Wanda's defaults: 128 x 2048
    tokens of C4, seed 0), with `overrides`; a bad value raises LlmpruneError naming the option."""
    return validate_config(
        CalibConfig, WANDA_CALIB | overrides, what="calibration settings", name=as_option, show_input=True
    )


class SparsifyConfig(BaseModel):
    """What to sparsify and how (see the module doc); validated on construction."""

    model_config = ConfigDict(extra="forbid")
    method: str = Field("wanda", description="magnitude (per layer), wanda (per row) or global-magnitude")
    sparsity: float | None = Field(
        None, description=f"fraction of weights to zero, in [0, 1); default {DEFAULT_SPARSITY}, or 1-N/M with a pattern"
    )
    pattern: str | None = Field(None, description="N:M semi-structured sparsity: keep N of every M inputs (2:4, 4:8)")
    calib: CalibConfig = Field(default_factory=lambda: CalibConfig(**WANDA_CALIB), description="Wanda's calibration")
    sequential: bool = Field(
        True,
        description="Wanda: statistics of each layer from the already-pruned layers before it (locuslab/wanda), "
        "or from the dense model in one forward pass (half the compute)",
    )

    @field_validator("method")
    @classmethod
    def _method(cls, v: str) -> str:
        if v not in METHODS:
            raise ValueError(f"unknown method {v!r}; choose one of {', '.join(METHODS)}")
        return v

    @field_validator("sparsity")
    @classmethod
    def _sparsity(cls, v: float | None) -> float | None:
        if v is not None and not 0.0 <= float(v) < 1.0:
            raise ValueError(f"sparsity must be in [0, 1) (got {v}); e.g. 0.5 zeroes half the weights")
        return v

    @field_validator("pattern")
    @classmethod
    def _pattern(cls, v: str | None) -> str | None:
        try:
            parse_pattern(v)
        except LlmpruneError as e:
            raise ValueError(str(e)) from None
        return v

    @model_validator(mode="after")
    def _implied(self) -> SparsifyConfig:
        nm = self.nm
        if nm is None:
            if self.sparsity is None:
                self.sparsity = DEFAULT_SPARSITY
            return self
        implied = 1.0 - nm[0] / nm[1]
        if self.sparsity is not None and abs(float(self.sparsity) - implied) > 1e-9:
            raise ValueError(
                f"pattern {self.pattern} implies sparsity {implied:g} but sparsity {self.sparsity} was given; "
                f"drop the sparsity or pass {implied:g}"
            )
        if self.method == "global-magnitude":
            raise ValueError(
                "a pattern is not supported with method global-magnitude (a global threshold cannot keep "
                "N of every M weights); use method magnitude or wanda with a pattern"
            )
        self.sparsity = implied
        return self

    @property
    def nm(self) -> tuple[int, int] | None:
        return parse_pattern(self.pattern)

    @property
    def target(self) -> float:
        """The fraction of weights zeroed in every selected layer (implied by the pattern when given)."""
        return float(self.sparsity)

    def to_dict(self) -> dict[str, Any]:
        d = self.model_dump()
        d["target_sparsity"] = self.target
        if self.method not in NEEDS_CALIBRATION:
            d.pop("calib")
            d.pop("sequential")
        return d


def sparsify_config(**fields: Any) -> SparsifyConfig:
    """A validated SparsifyConfig; a bad value raises LlmpruneError naming the option (`--sparsity: ...`)."""
    return validate_config(SparsifyConfig, fields, what="sparsify settings", name=as_option, show_input=True)
