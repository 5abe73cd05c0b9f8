"""Settings of an unstructured / semi-structured sparsification run, validated up front.

`SparsifyConfig(method, sparsity, pattern, calib...)`:
- `method`: `magnitude` (lowest |W| of each weight matrix), `wanda` (lowest |W_ij| * ||X_j||_2 of each
  output row, activations from calibration) or `global-magnitude` (`torch.nn.utils.prune.global_unstructured`
  with L1 over all selected Linear layers, made permanent with `prune.remove`).
- `sparsity`: fraction of weights set to zero, in [0, 1).
- `pattern` `"N:M"`: semi-structured sparsity in the NVIDIA sense: in every group of M consecutive input
  weights of an output row at most N are non-zero (the N largest scores are kept, M - N are zeroed).
  The sparsity is then implied, 1 - N/M (2:4 and 4:8 zero half of the weights); passing a different
  `sparsity` with a pattern is an error. Every selected layer's input width must be a multiple of M.
- `sequential` (Wanda): statistics of layer i from the already-pruned layers 0..i-1 (locuslab/wanda's
  loop), or, when False, from the dense model in a single forward pass.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from pydantic import ValidationError

from llmprune.config import CalibConfig
from llmprune.errors import LlmpruneError, describe_validation

METHODS: tuple[str, ...] = ("magnitude", "wanda", "global-magnitude")
NEEDS_CALIBRATION: tuple[str, ...] = ("wanda",)


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
    """The calibration windows Wanda uses (`llmprune.config.CalibConfig` with Wanda's defaults: 128 x 2048
    tokens of C4, seed 0), with `overrides`; a bad value raises LlmpruneError naming the option."""
    try:
        return CalibConfig(**(WANDA_CALIB | overrides))
    except ValidationError as e:
        problems = describe_validation(e.errors(), lambda loc: "--" + str(loc[0]).replace("_", "-"), show_input=True)
        raise LlmpruneError(f"invalid calibration settings: {problems}") from e


@dataclass
class SparsifyConfig:
    """What to prune and how; `validate()` raises LlmpruneError naming the bad field and the fix."""

    method: str = "wanda"
    sparsity: float | None = 0.5
    pattern: str | None = None
    calib: CalibConfig = field(default_factory=wanda_calib)
    sequential: bool = True

    def __post_init__(self) -> None:
        self.validate()

    @property
    def nm(self) -> tuple[int, int] | None:
        return parse_pattern(self.pattern)

    @property
    def target(self) -> float:
        """The fraction of weights zeroed in every selected layer (implied by the pattern when given)."""
        nm = self.nm
        return 1.0 - nm[0] / nm[1] if nm else float(self.sparsity)

    def validate(self) -> None:
        if self.method not in METHODS:
            raise LlmpruneError(f"unknown --method {self.method!r}; choose one of {', '.join(METHODS)}")
        nm = parse_pattern(self.pattern)
        if nm is None and self.sparsity is None:
            raise LlmpruneError("no sparsity given; pass --sparsity in [0, 1) or --pattern N:M")
        if self.sparsity is not None and not 0.0 <= float(self.sparsity) < 1.0:
            raise LlmpruneError(f"--sparsity must be in [0, 1) (got {self.sparsity}); e.g. 0.5 zeroes half the weights")
        if nm is not None:
            implied = 1.0 - nm[0] / nm[1]
            if self.sparsity is not None and abs(float(self.sparsity) - implied) > 1e-9:
                raise LlmpruneError(
                    f"--pattern {self.pattern} implies sparsity {implied:g} but --sparsity {self.sparsity} was given; "
                    f"drop --sparsity or pass --sparsity {implied:g}"
                )
            if self.method == "global-magnitude":
                raise LlmpruneError(
                    "--pattern is not supported with --method global-magnitude (a global threshold cannot keep "
                    "N of every M weights); use --method magnitude or wanda with --pattern"
                )
            self.sparsity = implied

    def to_dict(self) -> dict:
        d = asdict(self)
        d["calib"] = self.calib.model_dump()
        d["target_sparsity"] = self.target
        if self.method not in NEEDS_CALIBRATION:
            d.pop("calib")
            d.pop("sequential")
        return d
