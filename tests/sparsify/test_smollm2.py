"""SmolLM2-135M (slow, bounded): Wanda with a small calibration set beats magnitude at 50%, exact sparsities."""

from __future__ import annotations

import copy

import pytest

from llmprune.data import load_text
from llmprune.eval.ppl import perplexity
from llmprune.sparsify import SparsifyConfig, sparsify_, wanda_calib
from llmprune.sparsify.targets import target_linears


@pytest.mark.slow
def test_wanda_beats_magnitude_on_smollm2(smollm2):
    dense, tok = smollm2
    text = load_text("wikitext2")[:60_000]
    results = {}
    for method in ("magnitude", "wanda"):
        model = copy.deepcopy(dense)
        cfg = SparsifyConfig(method=method, sparsity=0.5, calib=wanda_calib(samples=4, seq_len=128))
        report = sparsify_(model, cfg, tok, progress=False)
        assert report["achieved"]["overall"] == pytest.approx(0.5, abs=1e-6)
        lin = target_linears(model)["model.layers.7.mlp.down_proj"]
        row_zeros = (lin.weight == 0).sum(dim=1)
        if method == "wanda":
            assert (row_zeros == lin.in_features // 2).all()
        else:
            assert row_zeros.unique().numel() > 1  # magnitude compares across the whole matrix
        assert model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr()  # still tied
        results[method] = perplexity(model, tok, text, seq_len=128, max_windows=12, batch_size=12, progress=False)[0]
        del model
    assert results["wanda"] < 0.5 * results["magnitude"], results
