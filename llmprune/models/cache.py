"""Where llmprune keeps converted models: $LLMPRUNE_CACHE, else the user's cache folder."""

from __future__ import annotations

import os
from pathlib import Path

from llmprune.errors import LlmpruneError


def cache_dir() -> Path:
    env = os.environ.get("LLMPRUNE_CACHE")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "llmprune"


def cache_subdir(*parts: str) -> Path:
    """`cache_dir()/parts...`, created; a cache that is a file or not writable is one clear error."""
    root = cache_dir()
    path = root.joinpath(*parts)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        what = "is a file or lies under one" if isinstance(e, (NotADirectoryError, FileExistsError)) else e.strerror
        raise LlmpruneError(
            f"the llmprune cache {root} {what} ({path} cannot be made); set LLMPRUNE_CACHE to a writable folder"
        ) from e
    if not os.access(path, os.W_OK):
        raise LlmpruneError(f"the llmprune cache {path} is not writable; set LLMPRUNE_CACHE to a writable folder")
    return path
