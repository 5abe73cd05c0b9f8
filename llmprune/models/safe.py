"""Reading tensor files that may be damaged: one clear error naming the file, never a raw traceback.

Only safetensors and `torch.load(weights_only=True)` files (tensors and plain containers) are read; a
truncated file, a bad header or a pickle that holds code is refused with the file's path and what to do.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import torch

from llmprune.errors import LlmpruneError


def load_safetensors(path: str | Path, fix: str, device: str = "cpu") -> dict[str, torch.Tensor]:
    """Every tensor of safetensors file `path`; a damaged file raises LlmpruneError ending in `fix`."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return load_file(str(path), device=device)
    except (SafetensorError, OSError) as e:
        raise LlmpruneError(f"{path} cannot be read ({type(e).__name__}: {e}); {fix}") from e


def check_safetensors(path: str | Path, fix: str) -> None:
    """Read the header of safetensors file `path` (cheap): truncated or malformed files are refused."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            f.keys()
    except (SafetensorError, OSError) as e:
        raise LlmpruneError(f"{path} cannot be read ({type(e).__name__}: {e}); {fix}") from e


def load_tensors(path: str | Path, fix: str) -> Any:
    """`torch.load(path, weights_only=True)`: files holding anything but tensors and containers are refused."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, ValueError) as e:
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise LlmpruneError(f"{path} cannot be loaded safely ({first}); llmprune loads only tensors: {fix}") from e
