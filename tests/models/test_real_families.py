"""Opt-in (LLMPRUNE_REAL_MODELS=1): the real Gemma 3 270M and Qwen2.5-Coder-0.5B, pruned, saved and loaded
back with llmprune and with transformers. Minutes on a CPU and about 750 MB of downloads the first time,
so not in the default run; `llmprune run recipes/smollm2_20pct.yaml --set model=ALIAS` measures them."""

from __future__ import annotations

import copy
import os

import pytest
import torch

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not os.environ.get("LLMPRUNE_REAL_MODELS"), reason="set LLMPRUNE_REAL_MODELS=1 to run"),
]


@pytest.mark.parametrize("alias", ["gemma3-270m", "qwen2.5-0.5b"])
def test_real_model_prunes_exactly_and_reloads(alias, tmp_path):
    from transformers import AutoModelForCausalLM

    from llmprune.models import load_model
    from llmprune.prune import PruneConfig
    from llmprune.prune.pipeline import plan_pruning
    from llmprune.surgery import load_pruned, mask_, prune_, save_pruned

    model, tok = load_model(alias, dtype="float32", device="cpu")
    batches = torch.randint(0, 1000, (2, 32), generator=torch.Generator().manual_seed(0))
    result = plan_pruning(model, tok, PruneConfig(ratio=0.2), batches=batches, progress=False)
    ids = tok("The quick brown fox jumps over the lazy dog.", return_tensors="pt")["input_ids"]
    with torch.no_grad():
        ref = mask_(copy.deepcopy(model), result.plan)(ids).logits
        pruned = prune_(model, result.plan)
        torch.testing.assert_close(pruned(ids).logits, ref, atol=2e-4, rtol=0)
    out = save_pruned(pruned, result.plan, tmp_path / "out", tokenizer=tok)
    kw = {"trust_remote_code": True} if (out / "modeling_llmprune.py").is_file() else {}
    with torch.no_grad():
        for loaded in (load_pruned(out), AutoModelForCausalLM.from_pretrained(out, **kw)):
            torch.testing.assert_close(loaded(ids).logits, ref, atol=2e-4, rtol=0)
