"""User-facing errors. The CLI prints these without a traceback and exits non-zero."""


class LlmpruneError(Exception):
    """A problem with the user's input: the message names the problem and the fix."""
