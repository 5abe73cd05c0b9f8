"""Read a GGUF file's architecture from its header alone (milliseconds; no tensor or vocabulary is read).

A GGUF file starts with `GGUF`, a version, the tensor and key/value counts, then its key/value pairs;
llama.cpp's writers put `general.architecture` first. The pairs before it (if any) are skipped by type.
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import BinaryIO

from llmprune.errors import LlmpruneError

# GGUF value types: fixed sizes in bytes (8 = string, 9 = array are read apart)
_SIZES = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
# GGUF architecture -> transformers model_type, where they differ
GGUF_MODEL_TYPES = {"gemma3": "gemma3_text"}
MAX_KEYS_BEFORE = 64
ARCH_KEY = "general.architecture"
MODEL_TYPE_KEY = "general.llmprune.model_type"  # written by `llmprune export` (a `deci` file is a pruned llama)  # give up looking for the architecture after this many other keys


def _u64(f: BinaryIO) -> int:
    return struct.unpack("<Q", _read(f, 8))[0]


def _read(f: BinaryIO, n: int) -> bytes:
    data = f.read(n)
    if len(data) != n:
        raise EOFError
    return data


def _string(f: BinaryIO) -> str:
    return _read(f, _u64(f)).decode("utf-8", "replace")


def _skip(f: BinaryIO, kind: int) -> None:
    if kind == 8:
        f.seek(_u64(f), 1)
    elif kind == 9:
        item, count = struct.unpack("<I", _read(f, 4))[0], _u64(f)
        if item in _SIZES:
            f.seek(_SIZES[item] * count, 1)
        else:
            for _ in range(count):
                _skip(f, item)
    elif kind in _SIZES:
        f.seek(_SIZES[kind], 1)
    else:
        raise ValueError(f"unknown GGUF value type {kind}")


def header_strings(path: str | Path, keys: tuple[str, ...], max_keys: int = MAX_KEYS_BEFORE) -> dict[str, str]:
    """The string values of `keys` found among a GGUF file's first `max_keys` keys (missing ones are left
    out); LlmpruneError when it is no readable GGUF file."""
    path = Path(path)
    found: dict[str, str] = {}
    try:
        with open(path, "rb") as f:
            if _read(f, 4) != b"GGUF":
                raise LlmpruneError(f"{path} is not a GGUF file (no GGUF magic number at the start)")
            _read(f, 4)  # version
            _u64(f)  # tensor count
            for _ in range(min(_u64(f), max_keys)):
                key, kind = _string(f), struct.unpack("<I", _read(f, 4))[0]
                if key in keys and kind == 8:
                    found[key] = _string(f)
                    if len(found) == len(keys):
                        break
                else:
                    _skip(f, kind)
    except (EOFError, ValueError, OSError) as e:
        raise LlmpruneError(f"{path} is not a readable GGUF file ({type(e).__name__}: {e})") from e
    return found


def gguf_architecture(path: str | Path) -> str:
    """`general.architecture` of a GGUF file (e.g. "llama", "gemma3"); LlmpruneError when it is no GGUF."""
    arch = header_strings(path, ("general.architecture",)).get("general.architecture")
    if arch is None:
        raise LlmpruneError(f"{path} has no general.architecture in its header; it is not a model GGUF file")
    return arch


def gguf_model_type(path: str | Path) -> str:
    """The transformers model_type a GGUF file converts to (a GGUF llmprune wrote names it in its header)."""
    found = header_strings(path, (ARCH_KEY, MODEL_TYPE_KEY))
    if MODEL_TYPE_KEY in found:
        return found[MODEL_TYPE_KEY]
    if ARCH_KEY not in found:
        raise LlmpruneError(f"{path} has no general.architecture in its header; it is not a model GGUF file")
    return GGUF_MODEL_TYPES.get(found[ARCH_KEY], found[ARCH_KEY])
