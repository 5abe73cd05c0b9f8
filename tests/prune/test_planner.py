"""Plan making: ratio -> units, GQA slots, per-layer vs global ranking, rounding, scopes, errors."""

from __future__ import annotations

import pytest
import torch

from llmprune.errors import LlmpruneError
from llmprune.prune.config import PruneConfig
from llmprune.prune.costs import unit_costs
from llmprune.prune.plan import BaseShape, stock_loadable
from llmprune.prune.planner import make_plan
from tests.tiny import meta_model

BASE = BaseShape("llama", num_layers=4, hidden_size=32, num_heads=6, num_kv_heads=2, head_dim=8, intermediate_size=40)
COSTS = unit_costs(meta_model(BASE, vocab=100, tied=True))


def _scores(seed=0, mlp_scale=None):
    g = torch.Generator().manual_seed(seed)
    s = {}
    for i in range(BASE.num_layers):
        scale = 1.0 if mlp_scale is None else mlp_scale[i]
        s[f"layers.{i}.mlp_channel"] = torch.rand(40, generator=g, dtype=torch.float64) * scale
        s[f"layers.{i}.attn_head"] = torch.rand(6, generator=g, dtype=torch.float64) * 100
        s[f"layers.{i}.kv_group"] = torch.rand(2, generator=g, dtype=torch.float64) * 100
        s[f"layers.{i}.layer"] = torch.tensor([float(i + 1)], dtype=torch.float64)
    s["hidden"] = torch.rand(32, generator=g, dtype=torch.float64)
    return s


def _removed(plan, costs=COSTS):
    total = 0
    for lp in plan.layers:
        total += len(lp.mlp_channels) * costs.mlp_channel + len(lp.heads) * costs.head
        total += len(lp.kv_heads) * costs.kv_extra + (costs.layer if lp.drop else 0)
    return total + len(plan.hidden_channels) * costs.hidden_channel


def test_costs_by_hand():
    assert COSTS.mlp_channel == 3 * 32 and COSTS.head == 2 * 8 * 32 and COSTS.kv_extra == 2 * 8 * 32
    attn = (48 + 32) * 32 + 48 * 32
    assert COSTS.layer == attn + 3 * 32 * 40 + 64
    # a column of q/k/v/gate/up (48 + 2*16 + 2*40), a row of o/down (48 + 40), two norms; embedding (tied); final norm
    assert COSTS.hidden_channel == 100 + 4 * (48 + 32 + 80 + 88 + 2) + 1


@pytest.mark.parametrize(
    "family, flags, biases",
    [
        ("qwen2", {}, {"qkv": 1, "o": 0, "mlp": 0}),  # q/k/v biases, none on o_proj
        ("llama", {"attention_bias": True}, {"qkv": 1, "o": 1, "mlp": 0}),  # attention_bias: q, k, v and o
        ("llama", {"mlp_bias": True}, {"qkv": 0, "o": 0, "mlp": 1}),
    ],
)
def test_costs_count_each_projection_bias_once(family, flags, biases):
    base = BaseShape(
        family, num_layers=4, hidden_size=32, num_heads=6, num_kv_heads=2, head_dim=8, intermediate_size=40
    )
    costs = unit_costs(meta_model(base, vocab=100, tied=False, **flags))
    qkv, o, mlp = biases["qkv"], biases["o"], biases["mlp"]
    assert costs.head == 2 * 8 * 32 + 8 * qkv  # q rows (+ q bias), o columns
    assert costs.kv_extra == 2 * 8 * 32 + 2 * 8 * qkv  # k and v rows (+ biases)
    assert costs.mlp_channel == 3 * 32 + 2 * mlp  # gate/up rows (+ biases), down column
    per_layer = (48 + 32 + 80) + (48 + 40) + 2 + o + mlp  # readers' columns, writers' rows (+ o/down bias), norms
    assert costs.hidden_channel == 2 * 100 + 4 * per_layer + 1  # untied: embedding and lm_head
    attn = (48 + 32) * 32 + 48 * 32 + (48 + 32) * qkv + 32 * o
    assert costs.layer == attn + 3 * 32 * 40 + (2 * 40 + 32) * mlp + 64


def test_global_ranking_removes_least_important_mlp_first():
    cfg = PruneConfig(ratio=0.1, prune_heads=False)
    scores = _scores(mlp_scale=[10.0, 10.0, 0.001, 10.0])  # layer 2 is unimportant
    plan = make_plan(BASE, scores, cfg, target=2000, costs=COSTS, layers=[0, 1, 2, 3])
    assert [lp.layer for lp in plan.layers] == [2]
    lp = plan.layer(2)
    assert len(lp.mlp_channels) == 21  # ceil(2000 / 96)
    weakest = set(scores["layers.2.mlp_channel"].argsort()[:21].tolist())
    assert set(lp.mlp_channels) == weakest and _removed(plan) >= 2000


def test_gqa_slots_keep_equal_heads_per_group():
    cfg = PruneConfig(ratio=0.2, prune_mlp=False)
    plan = make_plan(BASE, _scores(1), cfg, target=3 * 2 * COSTS.head, costs=COSTS, layers=[0, 1, 2, 3])
    plan.validate()
    for lp in plan.layers:
        per_group = [sum(1 for h in lp.heads if h // 3 == kv) for kv in range(2)]
        assert per_group[0] == per_group[1] and not lp.kv_heads


def test_kv_unit_removes_whole_groups():
    cfg = PruneConfig(ratio=0.2, prune_mlp=False, attn_unit="kv")
    target = 3 * COSTS.head + COSTS.kv_extra
    plan = make_plan(BASE, _scores(2), cfg, target=target, costs=COSTS, layers=[0, 1, 2, 3])
    (lp,) = plan.layers
    (kv,) = lp.kv_heads
    assert lp.heads == (kv * 3, kv * 3 + 1, kv * 3 + 2)


def test_per_layer_ranking_is_uniform_and_rounded():
    cfg = PruneConfig(ratio=0.2, ranking="layer", prune_heads=False, round_to=8)
    plan = make_plan(BASE, _scores(3), cfg, target=4 * 10 * 96, costs=COSTS, layers=[0, 1, 2, 3])
    kept = {40 - len(lp.mlp_channels) for lp in plan.layers}
    assert kept == {32} or kept == {24}  # one width everywhere, a multiple of 8


def test_layer_range_is_respected():
    cfg = PruneConfig(ratio=0.1)
    plan = make_plan(BASE, _scores(4), cfg, target=3000, costs=COSTS, layers=[1, 2])
    assert {lp.layer for lp in plan.layers} <= {1, 2}


def test_ratio_that_would_empty_layers_is_refused():
    cfg = PruneConfig(ratio=0.9, prune_heads=False)
    with pytest.raises(LlmpruneError, match="emptying"):
        make_plan(BASE, _scores(), cfg, target=10**7, costs=COSTS, layers=[0, 1])
    cfg = PruneConfig(ratio=0.9, prune_heads=False, ranking="layer")
    with pytest.raises(LlmpruneError, match="empty layers"):
        make_plan(BASE, _scores(), cfg, target=10**7, costs=COSTS, layers=[0, 1])


def test_channel_scope_keeps_a_multiple_of_the_head_count():
    cfg = PruneConfig(ratio=0.2, scope="channel")
    plan = make_plan(BASE, _scores(5), cfg, target=COSTS.hidden_channel * 5, costs=COSTS, layers=[0, 1, 2, 3])
    kept = 32 - len(plan.hidden_channels)
    assert kept % 6 == 0 and kept < 32
    assert set(plan.hidden_channels) == set(_scores(5)["hidden"].argsort()[: 32 - kept].tolist())


def test_layer_scope_drops_the_least_important_layers():
    cfg = PruneConfig(ratio=0.3, scope="layer")
    plan = make_plan(BASE, _scores(), cfg, target=COSTS.layer + 1, costs=COSTS, layers=[0, 1, 2, 3])
    assert plan.dropped_layers == (0, 1)
    with pytest.raises(LlmpruneError, match="lower --ratio"):
        make_plan(BASE, _scores(), cfg, target=COSTS.layer * 4, costs=COSTS, layers=[0, 1, 2, 3])


def test_uniform_picks_head_counts_a_stock_config_accepts():
    # hidden 576 with 9 heads / 3 KV heads (SmolLM2): removing 1 slot leaves 6 heads (576 % 6 == 0)
    base = BaseShape(
        "llama", num_layers=2, hidden_size=576, num_heads=9, num_kv_heads=3, head_dim=64, intermediate_size=64
    )
    costs = unit_costs(meta_model(base, vocab=100, tied=True))
    g = torch.Generator().manual_seed(0)
    scores = {}
    for i in range(2):
        scores[f"layers.{i}.mlp_channel"] = torch.rand(64, generator=g, dtype=torch.float64)
        scores[f"layers.{i}.attn_head"] = torch.rand(9, generator=g, dtype=torch.float64)
    cfg = PruneConfig(ratio=0.4, uniform=True)
    target = 2 * (3 * costs.head + 10 * costs.mlp_channel)
    plan = make_plan(base, scores, cfg, target=target, costs=costs, layers=[0, 1])
    heads = {9 - len(lp.heads) for lp in plan.layers}
    mlp = {64 - len(lp.mlp_channels) for lp in plan.layers}
    assert len(heads) == 1 and len(mlp) == 1 and 576 % heads.pop() == 0
    assert stock_loadable(plan).ok


def test_phi3_keeps_the_same_heads_in_every_layer():
    """Phi-3 splits its fused q/k/v by the config's head counts: global ranking moves heads in every layer at once."""
    from llmprune.errors import LlmpruneError as Error

    base = BaseShape(
        "phi3", num_layers=4, hidden_size=48, num_heads=6, num_kv_heads=2, head_dim=8, intermediate_size=40
    )
    costs = unit_costs(meta_model(base, vocab=100, tied=False))
    scores = _scores(3)
    scores["layers.0.attn_head"] = scores["layers.0.attn_head"] / 1000  # only layer 0 has weak heads
    cfg = PruneConfig(ratio=0.3, prune_mlp=False)
    plan = make_plan(base, scores, cfg, target=2 * costs.head, costs=costs, layers=[0, 1, 2, 3])
    assert [len(plan.layer(i).heads) for i in range(4)] == [2, 2, 2, 2]  # one slot (2 heads) in every layer
    with pytest.raises(Error, match="same attention heads in every layer"):
        make_plan(base, scores, PruneConfig(ratio=0.3, layers="0-2"), target=100, costs=costs, layers=[0, 1, 2])
    with pytest.raises(Error, match="same number of query and KV heads"):
        from llmprune.prune.plan import LayerPlan, PrunePlan

        PrunePlan(base=base, layers=(LayerPlan(layer=0, heads=(0, 3)),)).validate()
