"""User-facing errors. The CLI prints these without a traceback and exits non-zero."""


class LlmpruneError(Exception):
    """A problem with the user's input: the message names the problem and the fix."""


def describe_validation(
    errors: list[dict], name=lambda loc: ".".join(map(str, loc)), *, show_input: bool = False
) -> str:
    """One line from pydantic's `ValidationError.errors()`: `field: message; ...`, each field named by
    `name(loc)` (dotted path by default), with the rejected value when `show_input`."""
    return "; ".join(
        f"{name(err['loc'])}: {err['msg']}" + (f" (got {err['input']!r})" if show_input else "") for err in errors
    )
