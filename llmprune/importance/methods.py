"""The importance methods, by name: what each needs from calibration and how it scores one parameter.

`IMPORTANCE` is filled by `register_importance`; `importance_method(name)` looks one up or lists the
choices (configs validate with it, and so does `score_groups`). The element functions are the pure
tensor maths of `llmprune.importance.taylor`; importing this module does not load torch.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from llmprune.errors import LlmpruneError
from llmprune.importance import taylor

if TYPE_CHECKING:
    import torch

Needs = Literal["nothing", "gradients", "fisher", "activations", "seed"]


@dataclass(frozen=True)
class ParamStats:
    """What calibration gathered for one parameter (None where the method needs none of it)."""

    grad: torch.Tensor | None = None  # gradient of the mean calibration loss, fp32
    fisher: torch.Tensor | None = None  # per-sample Fisher diagonal times w^2, fp32
    in_norm: torch.Tensor | None = None  # L2 norm of each input feature of the Linear owning the weight


@dataclass(frozen=True)
class ImportanceMethod:
    name: str
    description: str
    needs: Needs  # gradients (fisher: per-sample too), input activations, a seed, or nothing
    element: Callable[[torch.Tensor, ParamStats], torch.Tensor] | None  # None: one random score per unit
    signed: bool = False  # sum the signed element scores of a unit, then take |.| (vector-wise)

    @property
    def needs_gradients(self) -> bool:
        return self.needs in ("gradients", "fisher")

    @property
    def needs_calibration(self) -> bool:
        return self.needs in ("gradients", "fisher", "activations")


IMPORTANCE: dict[str, ImportanceMethod] = {}


def register_importance(method: ImportanceMethod) -> ImportanceMethod:
    if method.name in IMPORTANCE:
        raise ValueError(f"importance method {method.name!r} is already registered")
    IMPORTANCE[method.name] = method
    return method


def importance_method(name: str) -> ImportanceMethod:
    """The method called `name`, or an error listing the registered ones."""
    if name not in IMPORTANCE:
        raise LlmpruneError(f"unknown importance {name!r}; choose one of {', '.join(IMPORTANCE)}")
    return IMPORTANCE[name]


def _activation(w: torch.Tensor, s: ParamStats) -> torch.Tensor:
    # Linear weights use |W| * ||X||; the other members (norms, biases, embeddings) |w|
    if s.in_norm is not None and w.dim() == 2:
        return taylor.activation(w, s.in_norm)
    return taylor.magnitude(w, 1)


register_importance(
    ImportanceMethod(
        "element1", "first-order Taylor |g*w| per weight", "gradients", lambda w, s: taylor.element1(w, s.grad)
    )
)
register_importance(
    ImportanceMethod(
        "element2",
        "second-order Taylor |g*w - F/2|, F the per-sample Fisher diagonal",
        "fisher",
        lambda w, s: taylor.element2(w, s.grad, s.fisher),
    )
)
register_importance(
    ImportanceMethod(
        "vector", "vector-wise Taylor |sum g*w| per structure", "gradients", lambda w, s: taylor.vector(w, s.grad), True
    )
)
register_importance(ImportanceMethod("magnitude", "|w| (L1)", "nothing", lambda w, s: taylor.magnitude(w, 1)))
register_importance(ImportanceMethod("l2", "w^2 (L2)", "nothing", lambda w, s: taylor.magnitude(w, 2)))
register_importance(ImportanceMethod("random", "uniform random scores (seeded)", "seed", None))
register_importance(
    ImportanceMethod("activation", "Wanda-style |W| * ||X||_2 over calibration inputs", "activations", _activation)
)
