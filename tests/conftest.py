"""Shared fixtures: tiny random models built in-process, and the real SmolLM2 (slow, bounded)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
if "LLMPRUNE_DATA_DIR" not in os.environ and SHARED_DATA.is_dir():
    os.environ["LLMPRUNE_DATA_DIR"] = str(SHARED_DATA)

FAMILIES = ("llama", "mistral", "qwen2")


def tiny_config(family: str = "llama", *, heads: int = 4, kv_heads: int | None = None, **overrides):
    """A tiny random config of `family` (llama, mistral, qwen2). Qwen2 has q/k/v biases."""
    from transformers import AutoConfig

    kv_heads = heads if kv_heads is None else kv_heads
    head_dim = overrides.pop("head_dim", 8)
    kw = dict(
        vocab_size=128,
        hidden_size=overrides.pop("hidden_size", heads * head_dim),
        intermediate_size=48,
        num_hidden_layers=3,
        num_attention_heads=heads,
        num_key_value_heads=kv_heads,
        head_dim=head_dim,
        max_position_embeddings=64,
        tie_word_embeddings=False,
        attn_implementation="eager",
    )
    kw.update(overrides)
    return AutoConfig.for_model(family, **kw)


def tiny_model(family: str = "llama", *, seed: int = 0, **kw):
    """A tiny random causal LM in fp32 eval mode; norms and biases randomised so tests see them."""
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(tiny_config(family, **kw), dtype=torch.float32)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("norm.weight"):
                p.uniform_(0.5, 1.5)
            elif name.endswith("bias"):
                p.normal_(0, 0.1)
    return model.eval()


@pytest.fixture
def make_tiny():
    return tiny_model


@pytest.fixture(scope="session")
def smollm2():
    """The real SmolLM2-135M (fp32, CPU), converted once into the llmprune cache."""
    from llmprune.models import load_model

    return load_model("smollm2-135m", dtype="float32", device="cpu")


@pytest.fixture(scope="session")
def smollm2_dir(smollm2):
    from llmprune.models.aliases import alias_dir

    return alias_dir("smollm2-135m")
