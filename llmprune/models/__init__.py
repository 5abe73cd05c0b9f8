"""Model loading: hub ids, local folders, GGUF files, llmprune folders and built-in aliases.

`llmprune.models.options` (dtype and device names) imports without torch; the loaders load it on first use.
"""

from typing import Any

__all__ = ["count_params", "load_model", "load_tokenizer", "resolve_device", "resolve_dtype"]


def __getattr__(name: str) -> Any:
    if name == "count_params":
        from llmprune.models.params import count_params

        return count_params
    if name in ("load_model", "load_tokenizer", "resolve_device", "resolve_dtype"):
        from llmprune.models import load

        return getattr(load, name)
    raise AttributeError(f"module 'llmprune.models' has no attribute {name!r}")
