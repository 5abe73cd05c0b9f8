"""The LLM-aware groups agree with torch-pruning's traced coupling; what the raw trace says."""

from __future__ import annotations

import dataclasses
import sys

import pytest
import torch

from llmprune.errors import LlmpruneError
from llmprune.graph import Member, build_groups
from llmprune.graph.trace import trace_model
from llmprune.graph.verify import CouplingMismatch, sample_units, verify_groups
from tests.graph.cases import ALL, ALL_IDS
from tests.tiny import shrink_layer


@pytest.mark.parametrize(("case", "family", "heads", "kv", "extra"), ALL, ids=ALL_IDS)
def test_groups_agree_with_the_trace(case, family, heads, kv, extra, make_tiny):
    model = make_tiny(family, heads=heads, kv_heads=kv, **extra)
    groups = build_groups(model)
    result = verify_groups(model, groups)
    # one query per KV head per layer (shared by attn_head and kv_group), per MLP, and the hidden group
    assert (result.groups, result.queries) == (len(groups), 3 * (kv + 1) + 1)


def test_raw_trace_of_a_query_head_under_gqa(make_tiny):
    """torch-pruning couples query head 5's rows with o columns 1:1 and with KV head 5 // 4 = 1, channel-wise."""
    model = make_tiny("llama", heads=8, kv_heads=2)
    a = "model.layers.0.self_attn"
    traced = trace_model(model).coupled(f"{a}.q_proj.weight", 0, range(40, 48))
    assert set(traced) == {(f"{a}.{p}_proj.weight", d) for p, d in (("q", 0), ("o", 1), ("k", 0), ("v", 0))}
    assert traced[(f"{a}.o_proj.weight", 1)] == [(i, i) for i in range(40, 48)]
    for p in ("k", "v"):
        assert traced[(f"{a}.{p}_proj.weight", 0)] == [(i, None) for i in range(8, 16)]  # root lost by GQA


def test_raw_trace_of_mlp_and_tied_hidden(make_tiny):
    model = make_tiny("qwen2", heads=4, kv_heads=2, tie_word_embeddings=True, num_hidden_layers=1)
    trace = trace_model(model)
    mlp = trace.coupled("model.layers.0.mlp.gate_proj.weight", 0, [3, 7])
    assert mlp == {
        ("model.layers.0.mlp.gate_proj.weight", 0): [(3, 3), (7, 7)],
        ("model.layers.0.mlp.up_proj.weight", 0): [(3, 3), (7, 7)],
        ("model.layers.0.mlp.down_proj.weight", 1): [(3, 3), (7, 7)],
    }
    hidden = trace.coupled("model.embed_tokens.weight", 1, [5])
    a = "model.layers.0.self_attn"
    assert set(hidden) == {
        ("model.embed_tokens.weight", 1),  # embedding and the tied lm_head: one parameter
        ("model.layers.0.input_layernorm.weight", 0),
        (f"{a}.q_proj.weight", 1),
        (f"{a}.k_proj.weight", 1),
        (f"{a}.v_proj.weight", 1),
        (f"{a}.o_proj.weight", 0),
        ("model.layers.0.post_attention_layernorm.weight", 0),
        ("model.layers.0.mlp.gate_proj.weight", 1),
        ("model.layers.0.mlp.up_proj.weight", 1),
        ("model.layers.0.mlp.down_proj.weight", 0),
        ("model.norm.weight", 0),
    }
    assert all({i for i, _ in v} == {5} for v in hidden.values())


def test_trace_leaves_the_model_alone(make_tiny):
    """The trace runs on a meta twin; the model's weights, device and rotary function are untouched."""
    model = make_tiny("llama", heads=8, kv_heads=4)  # a shape where the raw rotary trace never ends
    modeling = sys.modules[type(model.model.layers[0].self_attn).__module__]
    rotary = modeling.apply_rotary_pos_emb
    x = torch.randint(0, 128, (1, 6))
    before = model(x).logits
    trace_model(model)
    assert modeling.apply_rotary_pos_emb is rotary
    assert torch.equal(model(x).logits, before)
    assert all(p.device.type == "cpu" for p in model.parameters())


def test_verify_pruned_widths(make_tiny):
    model = make_tiny("llama", heads=8, kv_heads=2)
    shrink_layer(model, 2, heads=4, kv_heads=2, intermediate=20)
    verify_groups(model, build_groups(model))


def _corrupt(groups, kind, edit):
    g = next(x for x in groups if x.kind == kind)
    return dataclasses.replace(g, members=edit(g.members))


@pytest.mark.parametrize(
    ("kind", "edit", "message"),
    [
        ("mlp_channel", lambda ms: ms[:1] + ms[2:], "traced but not in the group ['model.layers.1.mlp.up_proj"),
        ("kv_group", lambda ms: ms[:-1], "traced but not in the group ['model.layers.1.self_attn.o_proj"),
        ("hidden", lambda ms: ms[:5] + ms[6:], "traced but not in the group ['model.layers.0.self_attn.o_proj"),
        (
            "attn_head",
            lambda ms: (*ms, Member("model.layers.1.self_attn.k_proj", "weight", 0, 2)),
            "must not hold k/v rows",
        ),
        (
            "hidden",
            lambda ms: (*ms, Member("model.layers.1.mlp.up_proj", "weight", 0)),
            "do not cover model.layers.1.mlp.up_proj.weight dim 0 (size 48)",
        ),
        ("layer", lambda ms: ms[:-1], "are not exactly the layer's parameters"),
        ("layer", lambda ms: (*ms, Member("no.such", "weight", -1)), "no.such.weight is not a parameter"),
    ],
)
def test_disagreement_is_detected(kind, edit, message, make_tiny):
    model = make_tiny("llama", heads=8, kv_heads=2)
    groups = build_groups(model, layers=range(1, 2))
    with pytest.raises(CouplingMismatch) as e:
        verify_groups(model, [_corrupt(groups, kind, edit)])
    assert message in str(e.value)
    assert isinstance(e.value, LlmpruneError)


def test_sampling_units():
    assert sample_units(5, None) == [0, 1, 2, 3, 4]
    assert sample_units(32, 4) == [0, 10, 21, 31]
    assert sample_units(3, 8) == [0, 1, 2]
