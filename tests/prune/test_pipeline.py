"""End to end on tiny models: recipe -> prune -> save -> load, for every scope and family."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from llmprune.cli.app import main
from llmprune.errors import LlmpruneError
from llmprune.models import count_params, load_model
from llmprune.recipes import load_recipe, recipe_from_dict

RECIPES = Path(__file__).resolve().parents[2] / "recipes"
IDS = torch.tensor([[3, 9, 27, 81, 4, 12, 36, 108]])


def _recipe(model_dir, **prune):
    prune.setdefault("calib", {"samples": 4, "seq_len": 16})
    prune.setdefault("reconstruct_calib", {"samples": 8, "seq_len": 16})
    return recipe_from_dict({"model": str(model_dir), "prune": prune, "eval": {"max_windows": 4, "seq_len": 16}})


@pytest.mark.parametrize(
    ("family", "heads", "kv", "prune"),
    [
        ("llama", 4, 4, {"ratio": 0.2}),
        ("llama", 6, 2, {"ratio": 0.25, "importance": "element2", "aggregate": "max"}),
        ("mistral", 4, 2, {"ratio": 0.2, "ranking": "layer", "importance": "vector"}),
        ("qwen2", 4, 2, {"ratio": 0.2, "importance": "activation", "aggregate": "last"}),
        ("llama", 4, 2, {"ratio": 0.15, "scope": "channel", "importance": "magnitude"}),
        ("qwen2", 4, 2, {"ratio": 0.3, "scope": "layer", "importance": "random"}),
    ],
)
def test_run_recipe_end_to_end(tiny_dir, tiny_text_data, tmp_path, family, heads, kv, prune):
    from llmprune.jobs import run_recipe

    src = tiny_dir(family, heads=heads, kv_heads=kv, num_hidden_layers=4)
    out = tmp_path / "out"
    report = run_recipe(_recipe(src, **prune), out, progress=False)
    model, _ = load_model(str(out), device="cpu")
    assert count_params(model) == report["params_after"] < report["params_before"]
    assert report["ratio_removed"] >= prune["ratio"] - 0.02
    saved = json.loads((out / "report.json").read_text())
    assert saved["params_after"] == report["params_after"]
    assert {"before", "after", "seconds", "ratio_removed"} <= set(saved)
    assert saved["after"]["ppl"]["wikitext2"] > 1
    assert (out / "plan.json").is_file() and (out / "scores.safetensors").is_file()
    with torch.no_grad():
        assert torch.isfinite(model(input_ids=IDS).logits).all()


def test_prune_cli_and_bad_input(tiny_dir, tiny_text_data, tmp_path, capsys):
    src = tiny_dir("llama", heads=4, kv_heads=2)
    out = tmp_path / "pruned"
    with pytest.raises(SystemExit) as e:
        main(["prune", str(src), "--samples", "2", "--seq-len", "16", "--reconstruct-samples", "2", "--out", str(out)])
    assert e.value.code in (None, 0) and (out / "llmprune.json").is_file()
    for argv, message in [
        (["prune", str(src), "--ratio", "1.5", "--out", str(tmp_path / "x")], "ratio"),
        (["prune", str(src), "--ratio", "0.0", "--out", str(tmp_path / "x")], "ratio"),
        (["prune", str(src), "--ratio", "0.95", "--no-heads", "--out", str(tmp_path / "x")], "lower --ratio"),
        (["prune", str(src), "--layers", "2-9", "--out", str(tmp_path / "x")], "layer"),
        (["prune", str(src), "--calib", "ptb", "--out", str(tmp_path / "x")], "no data found for ptb"),
        (["prune", str(src), "--out", "/proc/llmprune-out"], "cannot write"),
    ]:
        with pytest.raises(SystemExit) as e:
            main(argv)
        assert e.value.code == 2, argv
        assert message in capsys.readouterr().err, argv
        assert not (tmp_path / "x").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".x")]  # no temp folder left behind


def test_llama7b_recipe_runs_on_a_tiny_stand_in(tiny_dir, tiny_text_data, tmp_path):
    from llmprune.jobs import run_recipe

    src = tiny_dir("llama", heads=4, kv_heads=4, num_hidden_layers=32)
    r = load_recipe(
        RECIPES / "llama7b_20pct.yaml",
        [f"model={src}", "eval.ppl=[wikitext2]", "eval.max_windows=2", "eval.seq_len=16", "prune.calib.seq_len=16"],
    )
    report = run_recipe(r, tmp_path / "out", progress=False)
    plan = json.loads((tmp_path / "out" / "plan.json").read_text())
    pruned_layers = {lp["layer"] for lp in plan["layers"]}
    assert pruned_layers <= set(range(4, 30)) and pruned_layers
    assert abs(report["ratio_removed"] - 0.2) < 0.03


def test_uniform_needs_the_full_layer_range(tiny_dir, tiny_text_data, tmp_path):
    from llmprune.jobs import run_recipe

    src = tiny_dir("llama", heads=4, kv_heads=2)
    with pytest.raises(LlmpruneError, match="uniform"):
        run_recipe(_recipe(src, ratio=0.2, uniform=True, layers="1-2"), tmp_path / "u", progress=False)


def test_bad_task_in_recipe_fails_before_pruning(tiny_dir, tiny_text_data, tmp_path):
    from llmprune.jobs import run_recipe

    src = tiny_dir("llama", heads=4, kv_heads=2)
    r = recipe_from_dict({"model": str(src), "prune": {"ratio": 0.2}, "eval": {"tasks": ["no_such_task"]}})
    with pytest.raises(LlmpruneError, match="no_such_task"):
        run_recipe(r, tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists()
