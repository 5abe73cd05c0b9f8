"""A model's structure without its weights: what `llmprune groups` needs.

For a Hugging Face folder, hub id or alias, only config.json is read and the model is built on the
meta device (no weights in memory, no weight I/O: a 7B model costs the same as SmolLM2). GGUF files and
folders written by llmprune (whose layers may have different widths) are loaded for real, because their
shapes live in the weights and the manifest.
"""

from __future__ import annotations

import torch
from torch import nn

from llmprune.errors import LlmpruneError


def load_skeleton(spec: str) -> nn.Module:
    """The causal LM named by `spec` (see llmprune.models.load_model); on the meta device where possible."""
    from llmprune.models.aliases import ensure_alias
    from llmprune.models.load import check_family, load_model, resolve_model_source

    check_family(spec)  # an unsupported architecture fails before any weights are read
    kind, loc = resolve_model_source(spec)
    if kind in ("gguf", "llmprune"):
        model, _ = load_model(spec, dtype="float32", device="cpu")
        return model
    from transformers import AutoConfig, AutoModelForCausalLM

    if kind == "alias":
        loc = str(ensure_alias(loc))
    try:
        config = AutoConfig.from_pretrained(loc, trust_remote_code=False)
    except (OSError, ValueError) as e:
        raise LlmpruneError(f"could not read the config of {spec!r}: {str(e).splitlines()[0]}") from e
    with torch.device("meta"):
        return AutoModelForCausalLM.from_config(config).eval()
