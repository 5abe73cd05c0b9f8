"""Golden group counts for tiny configs of every family, layer ranges, kinds, serialisation."""

from __future__ import annotations

import json

import pytest

from llmprune.errors import LlmpruneError
from llmprune.graph import WHOLE, Group, build_groups, parse_layer_range
from tests.graph.cases import ALL, ALL_IDS

# Hand-computed for head_dim 8, intermediate 48, 3 layers, hidden = heads * 8:
# kind -> (units, members, unit size of the first member)
GOLDEN = {
    "llama-mha-8x8": {
        "attn_head": (8, 2, 8),
        "kv_group": (8, 4, 8),
        "mlp_channel": (48, 3, 1),
        "layer": (1, 9, 1),
        "hidden": (64, 30, 1),
    },
    "llama-gqa2-8x4": {
        "attn_head": (8, 2, 8),
        "kv_group": (4, 4, 16),
        "mlp_channel": (48, 3, 1),
        "layer": (1, 9, 1),
        "hidden": (64, 30, 1),
    },
    "llama-gqa3-6x2": {
        "attn_head": (6, 2, 8),
        "kv_group": (2, 4, 24),
        "mlp_channel": (48, 3, 1),
        "layer": (1, 9, 1),
        "hidden": (48, 30, 1),
    },
    "llama-gqa4-8x2": {
        "attn_head": (8, 2, 8),
        "kv_group": (2, 4, 32),
        "mlp_channel": (48, 3, 1),
        "layer": (1, 9, 1),
        "hidden": (64, 30, 1),
    },
    "llama-mqa8-8x1": {
        "attn_head": (8, 2, 8),
        "kv_group": (1, 4, 64),
        "mlp_channel": (48, 3, 1),
        "layer": (1, 9, 1),
        "hidden": (64, 30, 1),
    },
    "mistral-8x2": {
        "attn_head": (8, 2, 8),
        "kv_group": (2, 4, 32),
        "mlp_channel": (48, 3, 1),
        "layer": (1, 9, 1),
        "hidden": (64, 30, 1),
    },
    # q/k/v biases: +1 member in attn_head (q), +3 in kv_group and layer
    "qwen2-6x2": {
        "attn_head": (6, 3, 8),
        "kv_group": (2, 7, 24),
        "mlp_channel": (48, 3, 1),
        "layer": (1, 12, 1),
        "hidden": (48, 30, 1),
    },
    # attention_bias (q/k/v/o) and mlp_bias (gate/up/down): o and down biases are hidden-sized
    "llama-bias-4x2": {
        "attn_head": (4, 3, 8),
        "kv_group": (2, 7, 16),
        "mlp_channel": (48, 5, 1),
        "layer": (1, 16, 1),
        "hidden": (32, 36, 1),
    },
    # tied: lm_head is the embedding's Parameter, listed once
    "llama-tied-4x2": {
        "attn_head": (4, 2, 8),
        "kv_group": (2, 4, 16),
        "mlp_channel": (48, 3, 1),
        "layer": (1, 9, 1),
        "hidden": (32, 29, 1),
    },
    # q_norm / k_norm over head_dim: whole, in the layer group only
    "qwen3-4x2": {
        "attn_head": (4, 2, 8),
        "kv_group": (2, 4, 16),
        "mlp_channel": (48, 3, 1),
        "layer": (1, 11, 1),
        "hidden": (32, 30, 1),
    },
    # four norms per layer (sandwich)
    "gemma2-4x2": {
        "attn_head": (4, 2, 8),
        "kv_group": (2, 4, 16),
        "mlp_channel": (48, 3, 1),
        "layer": (1, 11, 1),
        "hidden": (32, 36, 1),
    },
    "gemma3-4x2-tied": {
        "attn_head": (4, 2, 8),
        "kv_group": (2, 4, 16),
        "mlp_channel": (48, 3, 1),
        "layer": (1, 13, 1),
        "hidden": (32, 35, 1),
    },
    # fused qkv_proj (q, k and v rows: three members of one Linear) and gate_up_proj
    "phi3-4x2": {
        "attn_head": (4, 2, 8),
        "kv_group": (2, 4, 16),
        "mlp_channel": (48, 3, 1),
        "layer": (1, 6, 1),
        "hidden": (32, 21, 1),
    },
    # q_norm over every query row, k_norm over every key row: members of the head groups
    "olmo2-4x2": {
        "attn_head": (4, 3, 8),
        "kv_group": (2, 6, 16),
        "mlp_channel": (48, 3, 1),
        "layer": (1, 11, 1),
        "hidden": (32, 30, 1),
    },
}


@pytest.mark.parametrize(("case", "family", "heads", "kv", "extra"), ALL, ids=ALL_IDS)
def test_golden_counts(case, family, heads, kv, extra, make_tiny):
    model = make_tiny(family, heads=heads, kv_heads=kv, **extra)
    groups = build_groups(model)
    assert [g.id for g in groups] == [
        f"layers.{i}.{k}" for i in range(3) for k in ("attn_head", "kv_group", "mlp_channel", "layer")
    ] + ["hidden"]
    for g in groups:
        assert (g.units, len(g.members), g.members[0].unit_size) == GOLDEN[case][g.kind], g.id
    hidden = groups[-1]
    names = [m.name for m in hidden.members]
    assert len(names) == len(set(names))
    assert ("lm_head.weight" in names) == (not extra.get("tie_word_embeddings", False))


def test_qwen2_biases_and_execution_order(make_tiny):
    model = make_tiny("qwen2", heads=6, kv_heads=2)
    groups = {g.id: g for g in build_groups(model, layers=range(1, 2))}
    a = "model.layers.1.self_attn"
    kv = [(m.name, m.dim, m.unit_size) for m in groups["layers.1.kv_group"].members]
    assert kv == [
        (f"{a}.q_proj.weight", 0, 24),
        (f"{a}.q_proj.bias", 0, 24),
        (f"{a}.k_proj.weight", 0, 8),
        (f"{a}.k_proj.bias", 0, 8),
        (f"{a}.v_proj.weight", 0, 8),
        (f"{a}.v_proj.bias", 0, 8),
        (f"{a}.o_proj.weight", 1, 24),
    ]
    head = [(m.name, m.dim, m.unit_size) for m in groups["layers.1.attn_head"].members]
    assert head == [(f"{a}.q_proj.weight", 0, 8), (f"{a}.q_proj.bias", 0, 8), (f"{a}.o_proj.weight", 1, 8)]
    hidden = groups["hidden"].members
    assert (hidden[0].name, hidden[0].dim) == ("model.embed_tokens.weight", 1)
    assert [(m.name, m.dim) for m in hidden[1:10]] == [
        ("model.layers.0.input_layernorm.weight", 0),
        ("model.layers.0.self_attn.q_proj.weight", 1),
        ("model.layers.0.self_attn.k_proj.weight", 1),
        ("model.layers.0.self_attn.v_proj.weight", 1),
        ("model.layers.0.self_attn.o_proj.weight", 0),
        ("model.layers.0.post_attention_layernorm.weight", 0),
        ("model.layers.0.mlp.gate_proj.weight", 1),
        ("model.layers.0.mlp.up_proj.weight", 1),
        ("model.layers.0.mlp.down_proj.weight", 0),
    ]
    assert [(m.name, m.dim) for m in hidden[-2:]] == [("model.norm.weight", 0), ("lm_head.weight", 1)]


@pytest.mark.parametrize(("case", "family", "heads", "kv", "extra"), ALL, ids=ALL_IDS)
def test_every_parameter_is_covered(case, family, heads, kv, extra, make_tiny):
    """Layer groups hold every layer parameter whole, once; hidden holds the rest; nothing is left out."""
    model = make_tiny(family, heads=heads, kv_heads=kv, **extra)
    groups = build_groups(model)
    layer_members = [m for g in groups if g.kind == "layer" for m in g.members]
    assert all(m.dim == WHOLE for m in layer_members)
    assert sorted(m.name for m in layer_members) == sorted(n for n, _ in model.named_parameters() if ".layers." in n)
    named = {m.name for g in groups for m in g.members}
    assert named == {n for n, _ in model.named_parameters()}


def test_layer_range_and_kinds(make_tiny):
    model = make_tiny("llama", heads=4, kv_heads=2)
    groups = build_groups(model, layers=range(1, 3), kinds={"mlp_channel", "hidden"})
    assert [g.id for g in groups] == ["layers.1.mlp_channel", "layers.2.mlp_channel", "hidden"]
    # the hidden group always spans the whole model
    assert "model.layers.0.input_layernorm.weight" in {m.name for m in groups[-1].members}
    assert [g.id for g in build_groups(model, layers="2-2", kinds=["layer"])] == ["layers.2.layer"]


@pytest.mark.parametrize(
    ("layers", "kinds", "message"),
    [
        (range(2, 5), None, "out of bounds: the model has 3 layers (0-2)"),
        (range(-1, 2), None, "out of bounds"),
        (range(0), None, "is empty"),
        ([0, 2], None, "not contiguous"),
        ("0-3", None, "out of bounds"),
        (None, {"heads"}, "unknown group kind(s) ['heads']"),
        (None, set(), "unknown group kind"),
    ],
)
def test_bad_selection_is_a_clear_error(layers, kinds, message, make_tiny):
    model = make_tiny("llama", heads=4, kv_heads=2)
    with pytest.raises(LlmpruneError) as e:
        build_groups(model, layers=layers, kinds=kinds)
    assert message in str(e.value)


def test_parse_layer_range_is_inclusive():
    assert parse_layer_range("4-29", 32) == range(4, 30)  # LLM-Pruner's start 4, end 30 on LLaMA-7B
    assert parse_layer_range(" 0-31 ", 32) == range(0, 32)
    assert parse_layer_range("7", 32) == range(7, 8)
    for bad, message in [
        ("0-32", "out of bounds: the model has 32 layers (0-31)"),
        ("29-4", "start 29 is after end 4"),
        ("a-b", "write A-B"),
        ("-1-3", "write A-B"),
        ("1-2-3", "write A-B"),
        ("", "write A-B"),
    ]:
        with pytest.raises(LlmpruneError) as e:
            parse_layer_range(bad, 32)
        assert message in str(e.value), bad


def test_groups_round_trip_through_json(make_tiny):
    groups = build_groups(make_tiny("qwen2", heads=6, kv_heads=2))
    back = [Group.from_dict(d) for d in json.loads(json.dumps([g.to_dict() for g in groups]))]
    assert back == groups
