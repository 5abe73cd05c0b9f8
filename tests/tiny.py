"""Tiny random models built in-process, their tokenizer, and small model edits shared by the tests.

Tests import helpers as `from tests.<package>.<module> import name` (this module: `from tests.tiny import`).
"""

from __future__ import annotations

import torch
from torch import nn


def tiny_config(family: str = "llama", *, heads: int = 4, kv_heads: int | None = None, **overrides):
    """A tiny random config of `family` (any transformers model type). Special token ids that a family's
    defaults put outside the tiny vocabulary are moved inside it (padding) or dropped."""
    from transformers import AutoConfig

    _special_tokens_inside(family, overrides.get("vocab_size", 128), overrides)
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


def _special_tokens_inside(family: str, vocab: int, overrides: dict) -> None:
    """Move special token ids that `family`'s defaults put outside a `vocab`-sized vocabulary inside it."""
    from transformers import AutoConfig

    defaults = AutoConfig.for_model(family)
    for name, inside in (("pad_token_id", 0), ("bos_token_id", 1), ("eos_token_id", 2)):
        if isinstance(getattr(defaults, name, None), int) and getattr(defaults, name) >= vocab:
            overrides.setdefault(name, inside)


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


def shrink_layer(model, layer: int, *, heads: int, kv_heads: int, intermediate: int) -> None:
    """Give one layer narrower attention/MLP (as a pruned model has), keeping the first units."""
    cfg = model.config
    hd = cfg.head_dim
    attn, mlp = model.model.layers[layer].self_attn, model.model.layers[layer].mlp

    def cut(lin: nn.Linear, rows: int | None = None, cols: int | None = None) -> nn.Linear:
        w = lin.weight[: rows or lin.out_features, : cols or lin.in_features]
        new = nn.Linear(w.shape[1], w.shape[0], bias=lin.bias is not None)
        with torch.no_grad():
            new.weight.copy_(w)
            if lin.bias is not None:
                new.bias.copy_(lin.bias[: w.shape[0]])
        return new

    attn.q_proj = cut(attn.q_proj, rows=heads * hd)
    attn.k_proj = cut(attn.k_proj, rows=kv_heads * hd)
    attn.v_proj = cut(attn.v_proj, rows=kv_heads * hd)
    attn.o_proj = cut(attn.o_proj, cols=heads * hd)
    attn.num_key_value_groups = heads // kv_heads
    mlp.gate_proj = cut(mlp.gate_proj, rows=intermediate)
    mlp.up_proj = cut(mlp.up_proj, rows=intermediate)
    mlp.down_proj = cut(mlp.down_proj, cols=intermediate)


def meta_model(base, *, vocab: int = 100, tied: bool = True, **overrides):
    """A causal LM of `base`'s family and shapes (a `BaseShape`) on the meta device: shapes, no weights."""
    from transformers import AutoConfig, AutoModelForCausalLM

    _special_tokens_inside(base.model_type, vocab, overrides)
    config = AutoConfig.for_model(
        base.model_type,
        vocab_size=vocab,
        hidden_size=base.num_heads * base.head_dim,  # LlamaConfig refuses hidden % heads != 0 at construction
        intermediate_size=base.intermediate_size,
        num_hidden_layers=base.num_layers,
        num_attention_heads=base.num_heads,
        num_key_value_heads=base.num_kv_heads,
        head_dim=base.head_dim,
        tie_word_embeddings=tied,
        **overrides,
    )
    config.hidden_size = base.hidden_size  # the modeling code takes any hidden size with an explicit head_dim
    with torch.device("meta"):
        return AutoModelForCausalLM.from_config(config)
