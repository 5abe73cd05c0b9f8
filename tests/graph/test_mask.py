"""Zeroing a group's units changes exactly the slices the kind says (and nothing else), and removing
those slices physically gives the same logits as zeroing them (heads, KV heads, MLP channels)."""

from __future__ import annotations

import random

import pytest
import torch

from llmprune.errors import LlmpruneError
from llmprune.graph import build_groups
from llmprune.graph.mask import zero_units_
from tests.graph.cases import CASES, IDS
from tests.tiny import tiny_config

HD = 8  # head_dim of the tiny configs


def expected_zeroed(model, group, units, heads, kv) -> dict[str, torch.Tensor]:
    """Masks written from the definition of each kind, independently of Member.indices."""
    masks = {n: torch.zeros_like(p, dtype=torch.bool) for n, p in model.named_parameters()}
    g = heads // kv
    pre = f"model.layers.{group.layer}."
    if group.kind == "attn_head":
        rows = [h * HD + j for h in units for j in range(HD)]
        q_rows, o_cols, kv_rows = rows, rows, []
    elif group.kind == "kv_group":
        q_rows = [(u * g + t) * HD + j for u in units for t in range(g) for j in range(HD)]
        o_cols, kv_rows = q_rows, [u * HD + j for u in units for j in range(HD)]
    if group.kind in ("attn_head", "kv_group"):
        a = pre + "self_attn."
        for name in (a + "q_proj.weight", a + "q_proj.bias"):
            if name in masks:
                masks[name][q_rows] = True
        masks[a + "o_proj.weight"][:, o_cols] = True
        for name in (a + "k_proj.weight", a + "k_proj.bias", a + "v_proj.weight", a + "v_proj.bias"):
            if name in masks:
                masks[name][kv_rows] = True
    elif group.kind == "mlp_channel":
        for name in ("gate_proj.weight", "gate_proj.bias", "up_proj.weight", "up_proj.bias"):
            if pre + "mlp." + name in masks:
                masks[pre + "mlp." + name][units] = True
        masks[pre + "mlp.down_proj.weight"][:, units] = True
    elif group.kind == "layer":
        for name in masks:
            if name.startswith(pre):
                masks[name][...] = True
    elif group.kind == "hidden":
        for name, m in masks.items():
            if name.endswith(("embed_tokens.weight", "lm_head.weight")) or any(
                p in name
                for p in ("q_proj.weight", "k_proj.weight", "v_proj.weight", "gate_proj.weight", "up_proj.weight")
            ):
                m[:, units] = True
            elif any(p in name for p in ("norm.weight", "o_proj.", "down_proj.")):
                m[units] = True
    return masks


@pytest.mark.parametrize(("case", "family", "heads", "kv", "extra"), CASES, ids=IDS)
def test_zeroing_changes_exactly_the_expected_slices(case, family, heads, kv, extra, make_tiny):
    model = make_tiny(family, heads=heads, kv_heads=kv, **extra)
    groups = build_groups(model)
    rng = random.Random(case)
    for _ in range(12):
        group = rng.choice(groups)
        units = sorted(rng.sample(range(group.units), rng.randint(1, group.units)))
        before = {n: p.detach().clone() for n, p in model.named_parameters()}
        zero_units_(model, group, units)
        expect = expected_zeroed(model, group, units, heads, kv)
        for name, p in model.named_parameters():
            changed = p.detach() != before[name]
            assert torch.equal(changed, expect[name]), (group.id, units, name)
            p.data.copy_(before[name])


def test_zero_units_rejects_bad_units(make_tiny):
    model = make_tiny("llama", heads=4, kv_heads=2)
    group = build_groups(model, kinds={"kv_group"})[0]
    with pytest.raises(LlmpruneError, match=r"units \[2\] out of range 0..1"):
        zero_units_(model, group, [2])


def _remove(model, groups_units, family, **config):
    """A stock model of `config` holding `model`'s weights minus the slices of the removed units."""
    from transformers import AutoModelForCausalLM

    drop: dict[tuple[str, int], set[int]] = {}
    for group, units in groups_units:
        for m in group.members:
            drop.setdefault((m.name, m.dim), set()).update(i for u in units for i in m.indices(u))
    state = {}
    for name, p in model.named_parameters():
        w = p.detach()
        for (n, dim), idx in drop.items():
            if n == name:
                keep = torch.tensor([i for i in range(w.shape[dim]) if i not in idx])
                w = w.index_select(dim, keep)
        state[name] = w
    small = AutoModelForCausalLM.from_config(tiny_config(family, **config), dtype=torch.float32).eval()
    small.load_state_dict(state)
    return small


@pytest.mark.parametrize(
    ("family", "heads", "kv", "kind"),
    [
        ("llama", 8, 2, "attn_head"),  # one query head from every KV group: 8 -> 6 heads, 2 KV heads
        ("qwen2", 6, 2, "attn_head"),
        ("llama", 8, 2, "kv_group"),  # one KV head with its 4 query heads: 8 -> 4 heads, 1 KV head
        ("mistral", 6, 3, "kv_group"),
        ("llama", 4, 4, "kv_group"),  # multi-head attention: a head goes with its KV head
        ("qwen2", 4, 2, "mlp_channel"),
    ],
)
def test_zeroing_equals_removing(family, heads, kv, kind, make_tiny):
    # hidden 48: a multiple of every head count before and after (transformers validates it)
    model = make_tiny(family, heads=heads, kv_heads=kv, hidden_size=48)
    rng = random.Random(0)
    g = heads // kv
    chosen = []
    for group in build_groups(model, kinds={kind}):
        if kind == "attn_head":  # the same number from every KV group keeps the model loadable
            units = [k * g + rng.randrange(g) for k in range(kv)]
        elif kind == "kv_group":
            units = [rng.randrange(kv)]
        else:
            units = rng.sample(range(group.units), 10)
        chosen.append((group, units))
        zero_units_(model, group, units)
    shape = {"attn_head": dict(heads=heads - kv, kv_heads=kv), "kv_group": dict(heads=heads - g, kv_heads=kv - 1)}
    config = shape.get(kind, dict(heads=heads, kv_heads=kv, intermediate_size=38))
    small = _remove(model, chosen, family, hidden_size=48, **config)
    x = torch.randint(0, 128, (2, 12), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        torch.testing.assert_close(small(x).logits, model(x).logits, atol=1e-5, rtol=1e-5)
