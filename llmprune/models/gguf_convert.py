"""Convert a GGUF file into a plain safetensors Hugging Face folder.

transformers can load GGUF checkpoints (`gguf_file=`), de-quantizing them, but refuses to
`save_pretrained` such a model; we copy the state dict into a freshly built model instead.
"""

from __future__ import annotations

from pathlib import Path

import torch

from llmprune.errors import LlmpruneError
from llmprune.fsutil import atomic_dir


def load_gguf(path: str | Path, *, dtype: torch.dtype = torch.float32):
    """Load a GGUF file as a regular (saveable) transformers model plus its tokenizer."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = Path(path)
    if not path.is_file():
        raise LlmpruneError(f"GGUF file not found: {path}")
    try:
        import gguf  # noqa: F401
    except ImportError as e:  # pragma: no cover - gguf is a dependency
        raise LlmpruneError("loading .gguf files needs the `gguf` package: pip install gguf") from e
    try:
        tok = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
        src = AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name, dtype=torch.float32)
    except (ValueError, KeyError, OSError) as e:
        raise LlmpruneError(f"could not read GGUF file {path}: {e}") from e
    config = src.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    config.dtype = dtype
    model = AutoModelForCausalLM.from_config(config, dtype=dtype)
    missing, unexpected = model.load_state_dict(src.state_dict(), strict=False)
    missing = [k for k in missing if not (k == "lm_head.weight" and config.tie_word_embeddings)]
    if missing or unexpected:
        raise LlmpruneError(f"GGUF conversion of {path} failed: missing={missing} unexpected={unexpected}")
    model.tie_weights()
    model.config.name_or_path = str(path)
    return model.eval(), tok


def convert_gguf_to_hf(path: str | Path, out_dir: str | Path, *, expected_params: int | None = None) -> Path:
    """Write a safetensors HF folder (config, weights, tokenizer) converted from a GGUF file."""
    from llmprune.models.params import count_params

    model, tok = load_gguf(path)
    n = count_params(model)
    if expected_params is not None and n != expected_params:
        raise LlmpruneError(f"{path} converted to {n:,} parameters, expected {expected_params:,}; the file is corrupt")
    with atomic_dir(out_dir, "cache", replaces="any") as tmp:  # llmprune's own cache folder
        model.save_pretrained(tmp, safe_serialization=True)
        tok.save_pretrained(tmp)
    return Path(out_dir)
