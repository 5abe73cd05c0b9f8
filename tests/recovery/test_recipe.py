"""Recipes chain prune -> recover -> merge -> eval; the recovery section is validated before any work."""

from __future__ import annotations

import json

import pytest
import torch

from llmprune.errors import LlmpruneError
from llmprune.models import load_model
from llmprune.recipes import recipe_from_dict


def _recipe(model_dir, recovery):
    return recipe_from_dict(
        {
            "model": str(model_dir),
            "prune": {"ratio": 0.2, "calib": {"samples": 4, "seq_len": 16}, "reconstruct": False},
            "eval": {"max_windows": 4, "seq_len": 16, "before": False},
            "recovery": recovery,
        }
    )


def test_recipe_prunes_recovers_merges_and_evaluates(tiny_dir, tiny_text_data, alpaca_file, tmp_path):
    from llmprune.jobs import run_recipe

    src = tiny_dir("llama", heads=4, kv_heads=2)
    recovery = {"data": str(alpaca_file), "steps": 4, "batch_size": 4, "micro_batch_size": 2, "cutoff": 64, "lr": 1e-2}
    out = tmp_path / "runs" / "out"  # runs/ does not exist yet (a fresh checkout)
    report = run_recipe(_recipe(src, recovery), out, progress=False)
    assert report["recovery"]["steps"] == 4 and report["recovered"]["ppl"]["wikitext2"] > 1
    assert report["recovered"]["ppl"] != report["after"]["ppl"]
    saved = json.loads((out / "report.json").read_text())
    assert saved["ppl_recovered"] == report["recovered"]["ppl"]
    assert (out / "adapter" / "adapter_model.safetensors").is_file()
    merged, _ = load_model(str(out), device="cpu")
    assert not any("lora" in n for n, _ in merged.state_dict().items())
    with torch.no_grad():
        assert torch.isfinite(merged(input_ids=torch.tensor([[3, 4, 5, 6]])).logits).all()
    assert not [p for p in out.parent.iterdir() if ".recovery-" in p.name]  # scratch folder removed
    from llmprune.recovery import merge_lora

    with pytest.raises(LlmpruneError, match="already has an adapter merged"):
        merge_lora(merged, out / "adapter", pruned_dir=out)


@pytest.mark.parametrize(
    ("recovery", "message"),
    [
        ({"lora_rank": 8}, r"recovery\.lora_rank"),
        ({"lr": -1}, r"recovery\.lr"),
        ({"data": "/nonexistent/alpaca.json"}, "training data not found"),
        ({"data": "wikitext2", "teacher": "./no-such-model"}, "model path not found"),
        ({}, "no Alpaca data found"),
    ],
)
def test_bad_recovery_section_fails_before_pruning(tiny_dir, tiny_text_data, tmp_path, recovery, message, monkeypatch):
    from llmprune import jobs

    def boom(*a, **k):
        raise AssertionError("the model was loaded before the recovery section was checked")

    monkeypatch.setattr("llmprune.models.load_model", boom)
    with pytest.raises(LlmpruneError, match=message):
        jobs.run_recipe(_recipe(tiny_dir("llama"), recovery), tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists()


def test_an_output_folder_of_other_files_is_refused_before_any_work(tiny_dir, tiny_text_data, tmp_path, monkeypatch):
    from llmprune import jobs

    def boom(*a, **k):
        raise AssertionError("the model was loaded before --out was checked")

    monkeypatch.setattr("llmprune.models.load_model", boom)
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.tex").write_text("keep")
    with pytest.raises(LlmpruneError, match="is not an llmprune output.*remove it yourself"):
        jobs.run_recipe(_recipe(tiny_dir("llama"), None), mine, progress=False)
    assert [p.name for p in mine.iterdir()] == ["thesis.tex"]
