"""The family registry and the per-model layout (shapes read from the modules)."""

from __future__ import annotations

import pytest

from llmprune.arch import FAMILIES, Family, describe, register_family
from llmprune.errors import LlmpruneError
from llmprune.graph import build_groups
from tests.tiny import shrink_layer


def test_unsupported_architecture_names_the_supported_families():
    from transformers import GPT2Config, GPT2LMHeadModel

    model = GPT2LMHeadModel(GPT2Config(n_layer=1, n_embd=16, n_head=2, vocab_size=32, n_positions=16))
    for call in (describe, build_groups):
        with pytest.raises(LlmpruneError) as e:
            call(model)
        assert "unsupported architecture 'gpt2'" in str(e.value)
        assert "gemma2, gemma3_text, llama, mistral, olmo2, phi3, qwen2, qwen3" in str(e.value)


def test_layout_of_a_tiny_qwen2(make_tiny):
    lay = describe(make_tiny("qwen2", heads=6, kv_heads=2))
    assert (str(lay.family), lay.num_layers, lay.hidden_size, lay.head_dim, lay.vocab_size) == ("qwen2", 3, 48, 8, 128)
    assert (lay.biases, lay.tied) == ({"q", "k", "v"}, False)
    assert {(s.heads, s.kv_heads, s.group_size, s.intermediate) for s in lay.layers} == {(6, 2, 3, 48)}
    assert lay.proj(2, "k") == "model.layers.2.self_attn.k_proj"
    assert lay.proj(0, "down") == "model.layers.0.mlp.down_proj"
    assert lay.header()["layers"][1] == {"heads": 6, "kv_heads": 2, "group_size": 3, "mlp_channels": 48}


def test_tying_is_read_from_the_parameters(make_tiny):
    assert describe(make_tiny("llama", heads=4, kv_heads=2, tie_word_embeddings=True)).tied
    assert not describe(make_tiny("llama", heads=4, kv_heads=2)).tied


def test_pruned_layer_widths_come_from_the_modules(make_tiny):
    model = make_tiny("llama", heads=8, kv_heads=2)
    shrink_layer(model, 1, heads=4, kv_heads=2, intermediate=20)
    lay = describe(model)
    assert [(s.heads, s.kv_heads, s.intermediate) for s in lay.layers] == [(8, 2, 48), (4, 2, 20), (8, 2, 48)]
    units = {g.id: (g.units, g.members[0].unit_size) for g in build_groups(model)}
    assert units["layers.1.attn_head"] == (4, 8)
    assert units["layers.1.kv_group"] == (2, 16)  # 2 query heads per KV head here, 4 elsewhere
    assert units["layers.0.kv_group"] == (2, 32)
    assert units["layers.1.mlp_channel"] == (20, 1)


def test_bias_that_contradicts_the_config_is_an_error(make_tiny):
    model = make_tiny("llama", heads=4, kv_heads=2)
    model.config.attention_bias = True
    with pytest.raises(LlmpruneError, match="q_proj lacks a bias"):
        describe(model)


def test_heads_not_divisible_by_kv_heads_is_an_error(make_tiny):
    model = make_tiny("llama", heads=8, kv_heads=2)
    shrink_layer(model, 0, heads=3, kv_heads=2, intermediate=48)
    with pytest.raises(LlmpruneError, match="layer 0: q/k/v widths 24/16/16"):
        describe(model)


def test_registry_refuses_duplicates():
    assert set(FAMILIES) >= {"llama", "mistral", "qwen2"}
    with pytest.raises(ValueError, match="already registered"):
        register_family(Family("llama", "LlamaForCausalLM"))
