"""Which pruned shapes a stock config can state (transformers 5 config validation)."""

from __future__ import annotations

from llmprune.prune.plan import BaseShape, LayerPlan, PrunePlan, stock_loadable

SMOLLM2 = BaseShape("llama", 30, 576, 9, 3, 64, 1536)
LLAMA7B = BaseShape("llama", 32, 4096, 32, 32, 128, 11008)


def _every_layer(base: BaseShape, **kw) -> PrunePlan:
    return PrunePlan(base=base, layers=tuple(LayerPlan(layer=i, **kw) for i in range(base.num_layers)))


def test_smollm2_six_heads_is_stock():
    # one query head per KV group (3 of 9) -> 6 heads, 576 % 6 == 0
    assert stock_loadable(_every_layer(SMOLLM2, heads=(0, 3, 6), mlp_channels=tuple(range(100)))).ok
    # one KV head with its 3 query heads -> 6 heads / 2 KV heads
    assert stock_loadable(_every_layer(SMOLLM2, heads=(0, 1, 2), kv_heads=(0,))).ok


def test_llama7b_24_heads_is_not_stock():
    check = stock_loadable(_every_layer(LLAMA7B, heads=tuple(range(8)), kv_heads=tuple(range(8))))
    assert check.uniform and not check.ok and "not a multiple" in check.reason


def test_non_uniform_is_not_stock():
    plan = PrunePlan(base=SMOLLM2, layers=(LayerPlan(layer=4, mlp_channels=(1,)),))
    check = stock_loadable(plan)
    assert not check.uniform and not check.ok


def test_hidden_pruning_breaks_divisibility_for_llama_only():
    assert not stock_loadable(PrunePlan(base=SMOLLM2, hidden_channels=(0,))).ok  # 575 % 9 != 0
    assert stock_loadable(PrunePlan(base=SMOLLM2, hidden_channels=tuple(range(9)))).ok  # 567 = 9 * 63
    qwen = BaseShape("qwen2", 2, 64, 4, 2, 16, 32)
    assert stock_loadable(PrunePlan(base=qwen, hidden_channels=(0,))).ok  # qwen2 checks no divisibility


def test_head_options():
    # kv' <= 3 KV heads times g' <= 3 heads per group, with 576 % heads == 0 (5 and 7 are impossible)
    assert SMOLLM2.head_options() == [(9, 3), (6, 3), (6, 2), (4, 2), (3, 3), (3, 1), (2, 2), (2, 1), (1, 1)]
    assert (24, 24) not in LLAMA7B.head_options() and (16, 16) in LLAMA7B.head_options()
