"""Validation of sparsify settings: every bad input is a LlmpruneError that names the fix."""

from __future__ import annotations

import pytest

from llmprune.config import CalibConfig
from llmprune.errors import LlmpruneError
from llmprune.sparsify.config import SparsifyConfig, parse_pattern, wanda_calib


@pytest.mark.parametrize("sparsity", [-0.1, 1.0, 1.5])
def test_sparsity_outside_unit_interval(sparsity):
    with pytest.raises(LlmpruneError, match=r"--sparsity must be in \[0, 1\)"):
        SparsifyConfig("magnitude", sparsity)


@pytest.mark.parametrize("pattern", ["2-4", "a:b", "4:2", "0:4", "4:4", "2:4:8"])
def test_bad_patterns(pattern):
    with pytest.raises(LlmpruneError, match="pattern"):
        parse_pattern(pattern)


def test_pattern_implies_sparsity():
    assert parse_pattern("2:4") == (2, 4) and parse_pattern(None) is None and parse_pattern("") is None
    cfg = SparsifyConfig("wanda", None, "2:4")
    assert cfg.target == 0.5 and cfg.sparsity == 0.5 and cfg.nm == (2, 4)
    assert SparsifyConfig("magnitude", None, "1:4").target == 0.75
    assert SparsifyConfig("magnitude", 0.5, "4:8").target == 0.5  # consistent explicit value is fine


def test_pattern_conflicting_with_sparsity():
    with pytest.raises(LlmpruneError, match="implies sparsity 0.5"):
        SparsifyConfig("wanda", 0.3, "2:4")


def test_unknown_method_and_missing_sparsity():
    with pytest.raises(LlmpruneError, match="unknown --method 'sparsegpt'"):
        SparsifyConfig("sparsegpt", 0.5)
    with pytest.raises(LlmpruneError, match="no sparsity given"):
        SparsifyConfig("magnitude", None)
    with pytest.raises(LlmpruneError, match="global-magnitude"):
        SparsifyConfig("global-magnitude", None, "2:4")


def test_calibration_settings_are_the_shared_config_with_wanda_defaults():
    with pytest.raises(LlmpruneError, match="--samples: .*greater than or equal to 1"):
        wanda_calib(samples=0)
    with pytest.raises(LlmpruneError, match="--seq-len: .*greater than or equal to 2"):
        wanda_calib(seq_len=1)
    calib = SparsifyConfig("wanda", 0.5).calib
    assert isinstance(calib, CalibConfig)  # the same class as the structured pruner's calibration settings
    assert (calib.source, calib.samples, calib.seq_len, calib.seed) == ("c4", 128, 2048, 0)
    assert SparsifyConfig("wanda", 0.5).to_dict()["calib"] == {
        "source": "c4",
        "samples": 128,
        "seq_len": 2048,
        "seed": 0,
    }
    assert "calib" not in SparsifyConfig("magnitude", 0.5).to_dict()
    assert "sequential" not in SparsifyConfig("magnitude", 0.5).to_dict()
    assert SparsifyConfig("wanda", 0.5, sequential=False).to_dict()["sequential"] is False
