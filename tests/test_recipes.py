"""Recipes: every shipped recipe loads and round-trips; typos and bad values name the field."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from llmprune.errors import LlmpruneError
from llmprune.recipes import Recipe, load_recipe, recipe_from_dict

RECIPES = sorted((Path(__file__).resolve().parents[1] / "recipes").glob("*.yaml"))


@pytest.mark.parametrize("path", RECIPES, ids=[p.stem for p in RECIPES])
def test_shipped_recipes_load_and_round_trip(path):
    r = load_recipe(path)
    again = recipe_from_dict(yaml.safe_load(r.yaml()))
    assert again == r


def test_required_recipes_exist():
    names = {p.stem for p in RECIPES}
    assert {"smollm2_20pct", "llama7b_20pct"} <= names
    r = load_recipe(RECIPES[[p.stem for p in RECIPES].index("llama7b_20pct")])
    assert r.model == "huggyllama/llama-7b" and r.prune.layers == "4-29" and r.prune.importance == "element1"
    assert r.prune.calib.samples == 10


def _write(tmp_path, text):
    p = tmp_path / "r.yaml"
    p.write_text(text)
    return p


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("model: m\nprune:\n  ratoi: 0.2\n", "prune.ratoi"),
        ("model: m\nprune:\n  ratio: 1.5\n", "prune.ratio"),
        ("model: m\nprune:\n  importance: hessian9\n", "prune.importance"),
        ("model: m\nprune:\n  calib:\n    samples: 0\n", "prune.calib.samples"),
        ("model: m\nevaluation: {}\n", "evaluation"),
        ("prune: {}\n", "model"),
    ],
)
def test_bad_fields_are_named(tmp_path, text, field):
    with pytest.raises(LlmpruneError, match=field.replace(".", r"\.")):
        load_recipe(_write(tmp_path, text))


def test_overrides(tmp_path):
    p = _write(tmp_path, "model: m\nprune:\n  ratio: 0.2\n")
    r = load_recipe(p, ["prune.ratio=0.35", "model=other/model", "eval.ppl=[wikitext2, ptb]", "prune.layers=3-5"])
    assert r.prune.ratio == 0.35 and r.model == "other/model" and r.eval.ppl == ["wikitext2", "ptb"]
    assert r.prune.layers == "3-5" and r.name == "r"
    with pytest.raises(LlmpruneError, match="key=value"):
        load_recipe(p, ["prune.ratio"])
    with pytest.raises(LlmpruneError, match="prune.rati"):
        load_recipe(p, ["prune.rati=0.3"])


def test_missing_and_future_recipes(tmp_path):
    with pytest.raises(LlmpruneError, match="recipe not found"):
        load_recipe(tmp_path / "nope.yaml")
    for bad, shown in (("99", "99"), ("0", "0"), ("-1", "-1"), ("abc", "'abc'"), ("true", "True")):
        with pytest.raises(LlmpruneError, match=f"recipe version {shown} is not supported"):
            load_recipe(_write(tmp_path, f"version: {bad}\nmodel: m\n"))
    assert isinstance(recipe_from_dict({"model": "m"}), Recipe)


def test_every_missing_input_is_named_before_anything_loads(tmp_path, monkeypatch):
    """A recipe with a missing model and missing data names all of them, one line each, at once."""
    from llmprune.jobs import check_inputs
    from llmprune.recipes import recipe_from_dict

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("LLMPRUNE_DATA_DIR", str(tmp_path))
    recipe = recipe_from_dict(
        {
            "model": "nobody/no-such-model",
            "prune": {"calib": {"source": str(tmp_path / "calib.txt")}, "reconstruct": False},
            "eval": {"ppl": ["wikitext2", "ptb"]},
        }
    )
    with pytest.raises(LlmpruneError) as e:
        check_inputs(recipe)
    lines = str(e.value).splitlines()
    assert lines[0] == "4 problems, nothing was run:"
    assert "not in the local Hugging Face cache" in lines[1] and "HF_HUB_OFFLINE is set" in lines[1]
    assert "data file not found" in lines[2]
    assert "wikitext2/test" in lines[3] and "ptb/test" in lines[4]
