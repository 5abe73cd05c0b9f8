"""Metadata keys of the GGUF files llmprune writes, and a header-only check for them (no torch, no gguf).

`general.llmprune.format` marks a file as llmprune's (only such a file is ever replaced by an export);
`MODEL_TYPE_KEY` names the transformers family it loads as (a `deci` file is a pruned
LLaMA). Both come right after `general.architecture`, so reading the header finds them at once.
"""

from __future__ import annotations

from pathlib import Path

from llmprune.models.gguf_header import ARCH_KEY, MODEL_TYPE_KEY, header_strings

__all__ = ["ARCH_KEY", "CONFIG_KEY", "FORMAT", "FORMAT_KEY", "MODEL_TYPE_KEY", "VERSION_KEY", "is_llmprune_gguf"]

FORMAT_KEY = "general.llmprune.format"
FORMAT = "llmprune-gguf-1"
VERSION_KEY = "general.llmprune.version"
CONFIG_KEY = "llmprune.config"  # the Hugging Face config (JSON) the loader starts from
MARKER_KEYS_WITHIN = 8  # the marker keys are among the first keys of the header


def llmprune_format(path: str | Path) -> str | None:
    """The llmprune format of a GGUF file, None when llmprune did not write it (LlmpruneError: no GGUF)."""
    return header_strings(path, (FORMAT_KEY,), MARKER_KEYS_WITHIN).get(FORMAT_KEY)


def is_llmprune_gguf(path: str | Path) -> bool:
    """Did llmprune write this file? False for any other file, GGUF or not."""
    from llmprune.errors import LlmpruneError

    try:
        return llmprune_format(path) is not None
    except LlmpruneError:
        return False
