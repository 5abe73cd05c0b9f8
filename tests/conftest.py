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


def word_tokenizer(vocab_size: int = 128):
    """A word-level fast tokenizer over tokens t0..t{vocab-1} (whitespace split), saveable like any HF one."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {f"t{i}": i for i in range(vocab_size)}
    tk = Tokenizer(models.WordLevel(vocab=vocab, unk_token="t0"))
    tk.pre_tokenizer = pre_tokenizers.Whitespace()
    return PreTrainedTokenizerFast(tokenizer_object=tk, unk_token="t0", eos_token="t1")


def save_tiny(path, family: str = "llama", **kw):
    """Save a tiny random model + word tokenizer as a local HF folder; returns the in-memory model."""
    model = tiny_model(family, **kw)
    model.save_pretrained(path)
    word_tokenizer(model.config.vocab_size).save_pretrained(path)
    return model


@pytest.fixture
def make_tiny():
    return tiny_model


@pytest.fixture
def tiny_dir(tmp_path):
    """Factory: tiny_dir(family="llama", **config) -> path of a saved tiny model folder."""
    counter = iter(range(1000))

    def make(family: str = "llama", **kw):
        path = tmp_path / f"tiny-{family}-{next(counter)}"
        save_tiny(path, family, **kw)
        return path

    return make


@pytest.fixture
def tiny_text_data(tmp_path, monkeypatch):
    """$LLMPRUNE_DATA_DIR with wikitext2 test/valid made of the tiny tokenizer's words."""
    g = torch.Generator().manual_seed(0)
    root = tmp_path / "data"
    (root / "wikitext2").mkdir(parents=True)
    for split in ("test", "valid"):
        ids = torch.randint(2, 128, (4000,), generator=g).tolist()
        lines = [" " + " ".join(f"t{i}" for i in ids[k : k + 40]) + "\n" for k in range(0, 4000, 40)]
        (root / "wikitext2" / f"{split}.txt").write_text("".join(lines))
    monkeypatch.setenv("LLMPRUNE_DATA_DIR", str(root))
    return root


@pytest.fixture(scope="session")
def smollm2():
    """The real SmolLM2-135M (fp32, CPU), converted once into the llmprune cache."""
    from llmprune.models import load_model

    return load_model("smollm2-135m", dtype="float32", device="cpu")


@pytest.fixture(scope="session")
def smollm2_dir(smollm2):
    from llmprune.models.aliases import alias_dir

    return alias_dir("smollm2-135m")
