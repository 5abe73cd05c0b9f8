"""The importance-method and aggregation registries: names, what each method needs, errors naming the choices."""

from __future__ import annotations

import pytest
import torch

from llmprune.errors import LlmpruneError
from llmprune.importance.aggregate import AGGREGATIONS, aggregate, aggregation, register_aggregation
from llmprune.importance.methods import IMPORTANCE, ImportanceMethod, ParamStats, importance_method, register_importance
from llmprune.prune.config import PruneConfig


def test_registered_names_and_needs():
    assert list(IMPORTANCE) == ["element1", "element2", "vector", "magnitude", "l2", "random", "activation"]
    assert [m for m, spec in IMPORTANCE.items() if spec.needs_gradients] == ["element1", "element2", "vector"]
    assert [m for m, spec in IMPORTANCE.items() if spec.needs_calibration] == [
        "element1",
        "element2",
        "vector",
        "activation",
    ]
    assert importance_method("vector").signed and not importance_method("element1").signed
    assert list(AGGREGATIONS) == ["sum", "mean", "max", "prod", "last"]


def test_one_check_for_config_and_library():
    with pytest.raises(LlmpruneError, match="unknown importance 'taylor'; choose one of element1, element2"):
        importance_method("taylor")
    with pytest.raises(LlmpruneError, match="unknown aggregation 'median'; choose one of sum, mean, max, prod, last"):
        aggregation("median")
    with pytest.raises(ValueError, match="unknown importance 'taylor'"):
        PruneConfig(importance="taylor")
    with pytest.raises(ValueError, match="unknown aggregation 'median'"):
        PruneConfig(aggregate="median")


def test_element_functions_read_what_calibration_gathered():
    w = torch.tensor([[1.0, -2.0], [3.0, 0.5]])
    g = torch.tensor([[0.5, 0.5], [-1.0, 2.0]])
    norms = torch.tensor([2.0, 10.0])
    stats = ParamStats(grad=g, fisher=torch.full_like(w, 0.2), in_norm=norms)
    torch.testing.assert_close(importance_method("element1").element(w, stats), (g * w).abs())
    torch.testing.assert_close(importance_method("element2").element(w, stats), (g * w - 0.1).abs())
    torch.testing.assert_close(importance_method("activation").element(w, stats), w.abs() * norms)
    bias = torch.tensor([1.0, -3.0])  # activation scores non-Linear members by magnitude
    torch.testing.assert_close(importance_method("activation").element(bias, ParamStats()), bias.abs())
    assert importance_method("random").element is None


def test_duplicates_are_refused():
    with pytest.raises(ValueError, match="already registered"):
        register_importance(ImportanceMethod("element1", "again", "gradients", None))
    with pytest.raises(ValueError, match="already registered"):
        register_aggregation("sum", "again")(lambda s: s.sum(0))


def test_a_new_aggregation_is_one_decorated_function(monkeypatch):
    monkeypatch.setattr("llmprune.importance.aggregate.AGGREGATIONS", dict(AGGREGATIONS))
    register_aggregation("min", "the smallest member score")(lambda s: s.min(0).values)
    scores = [torch.tensor([1.0, 5.0]), torch.tensor([3.0, 2.0])]
    assert aggregate(scores, "min").tolist() == [1.0, 2.0]
    assert PruneConfig(aggregate="min").aggregate == "min"
