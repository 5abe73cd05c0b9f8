"""The real SmolLM2-135M (slow, bounded): exactness and a stock-loadable round trip through load_model."""

from __future__ import annotations

import copy
import random

import pytest
import torch

from llmprune.models import count_params, load_model
from llmprune.prune.plan import BaseShape, LayerPlan, PrunePlan, stock_loadable
from llmprune.surgery import mask_, prune_, save_pruned


@pytest.mark.slow
def test_smollm2_exact_and_stock_round_trip(smollm2, tmp_path):
    from transformers import AutoModelForCausalLM

    model, tok = smollm2
    ids = tok("The capital of France is", return_tensors="pt").input_ids
    # uniform: 6 of 9 heads (one per KV group), 1536 -> 1280 MLP channels, 576 -> 570 hidden
    # (570 % 6 == 0, so a stock LlamaConfig can state it), layers 27 and 28 dropped
    rng = random.Random(0)
    layers = [
        LayerPlan(layer=i, drop=True)
        if i in (27, 28)
        else LayerPlan(layer=i, heads=(0, 4, 8), mlp_channels=tuple(sorted(rng.sample(range(1536), 256))))
        for i in range(30)
    ]
    plan = PrunePlan(
        base=BaseShape.from_config(model.config), layers=tuple(layers), hidden_channels=tuple(range(0, 576, 96))
    )
    assert stock_loadable(plan).ok
    pruned = prune_(copy.deepcopy(model), plan)
    # tied embedding 49152*570 + 28 layers * (q,k,v 570*(384+192+192) + o 384*570 + mlp 3*570*1280 + norms) + final norm
    assert count_params(pruned) == 49152 * 570 + 28 * (570 * 768 + 384 * 570 + 3 * 570 * 1280 + 2 * 570) + 570
    with torch.no_grad():
        ref = pruned(ids).logits
        masked = mask_(copy.deepcopy(model), plan)
        torch.testing.assert_close(ref, masked(ids).logits, atol=5e-4, rtol=0)  # 30 fp32 layers
        del masked

    out = save_pruned(pruned, plan, tmp_path / "smol", tokenizer=tok)
    loaded, tok2 = load_model(str(out), dtype="float32", device="cpu")  # the llmprune.json path
    stock = AutoModelForCausalLM.from_pretrained(out)
    with torch.no_grad():
        torch.testing.assert_close(loaded(ids).logits, ref, atol=1e-4, rtol=0)
        torch.testing.assert_close(stock(ids).logits, ref, atol=1e-4, rtol=0)
    assert tok2(" Paris").input_ids == tok(" Paris").input_ids
