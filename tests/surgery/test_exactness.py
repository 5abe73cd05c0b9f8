"""Masked-dense logits == pruned logits for random plans of every scope, family, GQA layout and tying, and
masking zeroes exactly the members of the plan's groups (so surgery, which removes those same slices,
removes exactly what the graph couples)."""

from __future__ import annotations

import copy
import random

import pytest
import torch

from llmprune.arch import describe
from llmprune.models.params import count_params
from llmprune.prune.plan import BaseShape
from llmprune.surgery import mask_, prune_
from tests.surgery.plans import SCOPES, random_plan

# (family, tiny_model kwargs): MHA, GQA, tied/untied, llama biases, qwen2 q/k/v biases
CASES = {
    "llama-mha": ("llama", dict(heads=4)),
    "llama-gqa-tied-bias": (
        "llama",
        dict(heads=6, kv_heads=2, tie_word_embeddings=True, attention_bias=True, mlp_bias=True),
    ),
    "mistral-gqa": ("mistral", dict(heads=8, kv_heads=2)),
    "qwen2-gqa-tied": ("qwen2", dict(heads=4, kv_heads=2, tie_word_embeddings=True)),
    "qwen3-gqa-bias": ("qwen3", dict(heads=4, kv_heads=2, attention_bias=True)),  # head norms
    "gemma2-gqa": ("gemma2", dict(heads=4, kv_heads=2)),  # sandwich (1 + w) norms, scaled embedding
    "gemma3-gqa-tied": ("gemma3_text", dict(heads=6, kv_heads=2, tie_word_embeddings=True)),
    "phi3-gqa": ("phi3", dict(heads=4, kv_heads=2)),  # fused qkv_proj / gate_up_proj
    "olmo2-gqa": ("olmo2", dict(heads=4, kv_heads=2)),  # q/k norms over whole projections
}


def expected_params(model_cfg, plan) -> int:
    """Parameter count of the pruned model, from the plan alone (independent of the surgery code)."""
    hidden, _, shapes = plan.kept_shapes()
    family = plan.base.model_type
    hd, vocab = plan.base.head_dim, model_cfg.vocab_size
    qkv_bias = family == "qwen2" or getattr(model_cfg, "attention_bias", False)
    o_bias = getattr(model_cfg, "attention_bias", False)
    mlp_bias = getattr(model_cfg, "mlp_bias", False)
    hidden_norms = 4 if family.startswith("gemma") else 2  # Gemma's sandwich norms
    head_norms = 2 * hd if family in ("qwen3", "gemma3_text") else 0  # q_norm, k_norm over head_dim
    n = vocab * hidden * (1 if model_cfg.tie_word_embeddings else 2) + hidden
    for w in shapes:
        q, kv, i = w.heads * hd, w.kv_heads * hd, w.intermediate
        n += hidden * (q + 2 * kv) + q * hidden + 3 * hidden * i + hidden_norms * hidden + head_norms
        n += (q + 2 * kv) * qkv_bias + hidden * o_bias + (2 * i + hidden) * mlp_bias
        n += (q + kv) if family == "olmo2" else 0  # q_norm over every query row, k_norm over every key row
    return n


@pytest.mark.parametrize("scope", SCOPES)
@pytest.mark.parametrize("case", CASES)
def test_masked_equals_pruned(make_tiny, case, scope):
    family, kw = CASES[case]
    for seed in range(2):
        model = make_tiny(family, seed=seed, **kw)
        plan = random_plan(BaseShape.from_config(model.config), random.Random(f"{case}-{scope}-{seed}"), scope)
        masked = mask_(copy.deepcopy(model), plan)
        pruned = prune_(model, plan)
        ids = torch.randint(0, 128, (2, 12), generator=torch.Generator().manual_seed(seed))
        with torch.no_grad():
            torch.testing.assert_close(pruned(ids).logits, masked(ids).logits, atol=1e-5, rtol=0)
        gen = dict(max_new_tokens=6, do_sample=False, pad_token_id=0)
        assert torch.equal(pruned.generate(ids[:1], **gen), masked.generate(ids[:1], **gen))

        hidden, kept, shapes = plan.kept_shapes()
        assert list(describe(pruned).layers) == shapes
        assert pruned.config.hidden_size == hidden and pruned.config.num_hidden_layers == len(kept)
        assert [layer.self_attn.layer_idx for layer in pruned.model.layers] == list(range(len(kept)))
        assert count_params(pruned) == expected_params(pruned.config, plan)
        assert all(p.requires_grad for p in pruned.parameters())
        if pruned.config.tie_word_embeddings:
            assert pruned.lm_head.weight is pruned.model.embed_tokens.weight


def test_qwen2_sliding_layer_types_move_with_layers(make_tiny):
    """Dropped layers take their entry of config.layer_types with them (sliding vs full attention)."""
    model = make_tiny(
        "qwen2",
        heads=4,
        kv_heads=2,
        num_hidden_layers=4,
        use_sliding_window=True,
        sliding_window=3,
        max_window_layers=2,
    )
    assert model.config.layer_types == ["full_attention"] * 2 + ["sliding_attention"] * 2
    base = BaseShape.from_config(model.config)
    from llmprune.prune.plan import LayerPlan, PrunePlan

    plan = PrunePlan(
        base=base, layers=(LayerPlan(layer=1, drop=True), LayerPlan(layer=2, drop=True, mlp_channels=(0,)))
    )
    masked = mask_(copy.deepcopy(model), plan)
    pruned = prune_(model, plan)
    assert pruned.config.layer_types == ["full_attention", "sliding_attention"]
    ids = torch.randint(0, 128, (1, 10), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(pruned(ids).logits, masked(ids).logits, atol=1e-5, rtol=0)


def test_bf16_keeps_dtype(make_tiny):
    model = make_tiny("llama", heads=4, kv_heads=2).to(torch.bfloat16)
    plan = random_plan(BaseShape.from_config(model.config), random.Random(0), "mix")
    prune_(model, plan)
    assert {p.dtype for p in model.parameters()} == {torch.bfloat16}
    assert model(torch.tensor([[1, 2, 3]])).logits.dtype == torch.bfloat16


def _member_masks(model, plan) -> dict[str, torch.Tensor]:
    """Which entries the plan's units own, written from the group members (independently of surgery)."""
    from llmprune.arch import WRITERS
    from llmprune.graph import build_groups

    masks = {n: torch.zeros_like(p, dtype=torch.bool) for n, p in model.named_parameters()}
    groups = {g.id: g for g in build_groups(model)}
    for gid, units in plan.removed_units().items():
        for m in groups[gid].members:
            idx = [i for u in units for i in m.indices(u)]
            masks[m.name].index_fill_(m.dim, torch.tensor(idx), True)
    lay = describe(model)
    writers = {lay.proj(i, role) for i in plan.dropped_layers for role in WRITERS}
    for m in (m for i in plan.dropped_layers for m in groups[f"layers.{i}.layer"].members):
        if m.module in writers:  # a dropped layer adds nothing: its writers (o_proj, down_proj) are zeroed whole
            masks[m.name][...] = True
    return masks


@pytest.mark.parametrize("scope", SCOPES)
@pytest.mark.parametrize("case", CASES)
def test_mask_zeroes_exactly_the_groups_members(make_tiny, case, scope):
    family, kw = CASES[case]
    model = make_tiny(family, seed=3, **kw)
    with torch.no_grad():  # no zero anywhere before masking
        for p in model.parameters():
            p.copy_(p.sign().where(p != 0, torch.ones_like(p)) * (p.abs() + 0.1))
    plan = random_plan(BaseShape.from_config(model.config), random.Random(f"members-{case}-{scope}"), scope)
    expect = _member_masks(model, plan)
    masked = mask_(copy.deepcopy(model), plan)
    for name, p in masked.named_parameters():
        assert torch.equal(p == 0, expect[name]), f"{name}: zeroed entries differ from the groups' members"
