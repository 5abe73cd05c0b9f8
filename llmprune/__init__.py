"""llmprune: structural pruning for Hugging Face causal language models."""

from __future__ import annotations

from typing import Any

from llmprune.errors import LlmpruneError
from llmprune.version import __version__

__all__ = ["LlmpruneError", "__version__", "load_model", "load_pruned"]


def __getattr__(name: str) -> Any:
    """Lazy top-level API (`llmprune.load_pruned`, `llmprune.load_model`) without importing torch eagerly."""
    if name == "load_pruned":
        from llmprune.surgery.io import load_pruned

        return load_pruned
    if name == "load_model":
        from llmprune.models.load import load_model

        return load_model
    raise AttributeError(f"module 'llmprune' has no attribute {name!r}")
