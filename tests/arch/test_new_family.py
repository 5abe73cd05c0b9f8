"""Adding a family is one registry entry: IBM's Granite (llama layout with multipliers) is refused by every
step, then, after the one entry below, graph, costs, surgery, reconstruction, saving (stock and
`trust_remote_code`), loading, sparsify targets and LoRA targets all work.

The entry is exactly what a new family adds to `llmprune/arch/families.py`:

    GRANITE = register_family(
        Family("granite", "GraniteForCausalLM", qkv_bias="attention_bias", o_bias="attention_bias", mlp_bias="mlp_bias")
    )
"""

from __future__ import annotations

import copy
import random

import pytest
import torch

from llmprune.arch import FAMILIES, Family, describe, register_family
from llmprune.errors import LlmpruneError
from llmprune.prune.plan import BaseShape
from tests.surgery.plans import random_plan

GRANITE_KW = dict(
    heads=6,
    kv_heads=2,
    attention_bias=True,
    mlp_bias=True,
    embedding_multiplier=2.0,
    residual_multiplier=0.5,
    attention_multiplier=0.3,
    logits_scaling=2.0,
)
IDS = torch.tensor([[5, 17, 99, 3, 64, 2, 120, 7]])


@pytest.fixture
def granite():
    """Register the Granite family for one test (the one-entry diff of the module doc), then remove it."""
    family = register_family(
        Family("granite", "GraniteForCausalLM", qkv_bias="attention_bias", o_bias="attention_bias", mlp_bias="mlp_bias")
    )
    yield family
    del FAMILIES["granite"]


def test_unregistered_family_is_refused_everywhere(make_tiny):
    from llmprune.graph import build_groups
    from llmprune.sparsify.targets import target_linears

    model = make_tiny("granite", **GRANITE_KW)
    for step in (describe, build_groups, target_linears):
        with pytest.raises(LlmpruneError, match="unsupported architecture 'granite'"):
            step(model)


def test_groups_agree_with_torch_pruning(granite, make_tiny):
    from llmprune.graph import build_groups, verify_groups

    model = make_tiny("granite", **GRANITE_KW)
    lay = describe(model)
    assert lay.family is granite and lay.biases == {"q", "k", "v", "o", "gate", "up", "down"}
    groups = build_groups(model, layout=lay)
    assert verify_groups(model, groups, layout=lay, max_units=3).groups == len(groups)


@pytest.mark.parametrize("scope", ["block", "mix", "uniform"])
def test_masked_equals_pruned_and_saved_folder_reloads(granite, make_tiny, tmp_path, scope):
    from transformers import AutoModelForCausalLM

    from llmprune.surgery import load_pruned, mask_, prune_, save_pruned

    model = make_tiny("granite", **GRANITE_KW)
    plan = random_plan(BaseShape.from_config(model.config), random.Random(f"granite-{scope}"), scope)
    masked = mask_(copy.deepcopy(model), plan)
    pruned = prune_(model, plan)
    with torch.no_grad():
        ref = masked(IDS).logits
        torch.testing.assert_close(pruned(IDS).logits, ref, atol=1e-5, rtol=0)
    out = save_pruned(pruned, plan, tmp_path / "out")
    with torch.no_grad():
        torch.testing.assert_close(load_pruned(out, attn="eager")(IDS).logits, ref, atol=1e-5, rtol=0)
        kw = {"trust_remote_code": True} if (out / "modeling_llmprune.py").is_file() else {}
        stock = AutoModelForCausalLM.from_pretrained(out, attn_implementation="eager", **kw)
        assert type(stock).__name__ == ("LlmprunedForCausalLM" if kw else "GraniteForCausalLM")
        torch.testing.assert_close(stock(IDS).logits, ref, atol=1e-5, rtol=0)


def test_costs_reconstruction_sparsify_and_lora_targets(granite, make_tiny):
    from llmprune.prune.costs import unit_costs
    from llmprune.prune.plan import LayerPlan, PrunePlan
    from llmprune.prune.reconstruct import reconstruct_
    from llmprune.recovery.config import RecoveryConfig
    from llmprune.recovery.lora import lora_targets
    from llmprune.sparsify.targets import target_linears

    model = make_tiny("granite", **GRANITE_KW)
    costs = unit_costs(model)
    assert costs.head == 2 * 8 * 48 + 8  # q rows + q bias, o columns
    assert costs.mlp_channel == 3 * 48 + 2  # gate/up rows + biases, down column
    assert len(target_linears(model)) == 3 * 7
    assert lora_targets(model, RecoveryConfig()) == [f"{r}_proj" for r in ("q", "k", "v", "o", "gate", "up", "down")]
    plan = PrunePlan(base=BaseShape.from_config(model.config), layers=(LayerPlan(layer=1, mlp_channels=(0, 5, 9)),))
    batches = torch.randint(0, 128, (4, 12), generator=torch.Generator().manual_seed(0))
    assert reconstruct_(model, plan, batches, progress=False) == ["model.layers.1.mlp.down_proj"]
    assert model.model.layers[1].mlp.down_proj.weight[:, [0, 5, 9]].abs().max() == 0
