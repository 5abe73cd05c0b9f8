"""The dense evaluation is cached by model fingerprint, settings and data: reused when all match, else redone."""

from __future__ import annotations

import pytest
import torch

from llmprune.eval.config import EvalConfig
from llmprune.eval.evaluate import evaluate
from llmprune.eval.reuse import cached_evaluation, evaluation_key, evaluations_dir
from tests.tiny import tiny_model, word_tokenizer


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("LLMPRUNE_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _run(model, tok, cfg, calls: list, said: list):
    def run():
        calls.append(1)
        return evaluate(model, tok, cfg, progress=False)

    return cached_evaluation(model, tok, cfg, run, say=said.append)


def test_reused_only_when_model_settings_and_data_match(cache, tiny_text_data):
    model, tok = tiny_model("llama"), word_tokenizer(128)
    cfg = EvalConfig(seq_len=16, max_windows=4)
    calls, said = [], []
    first, seconds = _run(model, tok, cfg, calls, said)
    again, _ = _run(model, tok, cfg, calls, said)
    assert len(calls) == 1 and again == first and seconds > 0
    assert len(said) == 1 and "reused the cached evaluation" in said[0] and "s saved" in said[0]
    assert (evaluations_dir() / f"{evaluation_key(model, tok, cfg)}.json").is_file()
    assert str(evaluations_dir()).startswith(str(cache))
    _run(model, tok, cfg.model_copy(update={"before": False}), calls, said)  # not a setting of the numbers
    assert len(calls) == 1
    _run(model, tok, cfg.model_copy(update={"max_windows": 3}), calls, said)  # another setting
    assert len(calls) == 2
    with torch.no_grad():
        next(iter(model.parameters()))[0, 0] += 1.0  # another model
    _run(model, tok, cfg, calls, said)
    assert len(calls) == 3
    text = tiny_text_data / "wikitext2" / "test.txt"
    text.write_text(text.read_text().replace("t5 ", "t6 ", 1))  # other data
    _run(model, tok, cfg, calls, said)
    assert len(calls) == 4


def test_a_damaged_entry_is_evaluated_again(cache, tiny_text_data):
    model, tok = tiny_model("llama"), word_tokenizer(128)
    cfg = EvalConfig(seq_len=16, max_windows=2)
    calls, said = [], []
    first, _ = _run(model, tok, cfg, calls, said)
    (evaluations_dir() / f"{evaluation_key(model, tok, cfg)}.json").write_text("{not json")
    again, _ = _run(model, tok, cfg, calls, said)
    timing = {"seconds"}  # how long each evaluation took differs; the numbers must not
    assert len(calls) == 2 and not said
    assert {k: v for k, v in again.items() if k not in timing} == {k: v for k, v in first.items() if k not in timing}


def test_a_recipe_run_again_reuses_its_dense_evaluation(cache, tiny_dir, tiny_text_data, tmp_path, capsys):
    from llmprune.jobs import run_recipe
    from llmprune.recipes import recipe_from_dict

    recipe = recipe_from_dict(
        {
            "model": str(tiny_dir("llama", heads=4, kv_heads=2)),
            "prune": {"ratio": 0.2, "calib": {"samples": 4, "seq_len": 16}, "reconstruct": False},
            "eval": {"max_windows": 4, "seq_len": 16},
        }
    )
    a = run_recipe(recipe, tmp_path / "a", progress=False)
    assert "reused the cached evaluation" not in capsys.readouterr().err
    b = run_recipe(recipe, tmp_path / "b", progress=False)
    err = capsys.readouterr().err
    assert "reused the cached evaluation" in err and "evaluating the pruned model (about" in err
    assert a["before"] == b["before"] and a["after"]["ppl"] == b["after"]["ppl"]
