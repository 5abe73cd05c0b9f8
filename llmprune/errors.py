"""User-facing errors. The CLI prints these without a traceback and exits non-zero."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

T = TypeVar("T")


class LlmpruneError(Exception):
    """A problem with the user's input: the message names the problem and the fix."""


def dotted(loc: Sequence[Any]) -> str:
    """A pydantic error location as a dotted field path (`prune.calib.samples`)."""
    return ".".join(map(str, loc))


def as_option(loc: Sequence[Any]) -> str:
    """A pydantic error location as the command-line option of its first field (`--seq-len`)."""
    return "--" + str(loc[0]).replace("_", "-") if loc else "option"


def describe_validation(
    errors: list[dict], name: Callable[[Sequence[Any]], str] = dotted, *, show_input: bool = False
) -> str:
    """One line from pydantic's `ValidationError.errors()`: `field: message; ...`, each field named by
    `name(loc)` (dotted path by default), with the rejected value when `show_input`."""
    return "; ".join(
        f"{name(err['loc'])}: {err['msg']}" + (f" (got {err['input']!r})" if show_input else "") for err in errors
    )


def validate_config(
    cls: type[T],
    data: Any,
    *,
    what: str,
    name: Callable[[Sequence[Any]], str] = dotted,
    show_input: bool = False,
) -> T:
    """`cls.model_validate(data)` (a pydantic config); a validation error becomes one LlmpruneError line
    `invalid {what}: field: message; ...` naming every bad field."""
    from pydantic import ValidationError

    if isinstance(data, cls):
        return data
    try:
        return cls.model_validate(data)  # type: ignore[attr-defined]
    except ValidationError as e:
        problems = describe_validation(e.errors(), name, show_input=show_input)
        raise LlmpruneError(f"invalid {what}: {problems}") from e
