"""Validation of sparsify settings: every bad input is a LlmpruneError that names the fix."""

from __future__ import annotations

import pytest

from llmprune.errors import LlmpruneError
from llmprune.sparsify.config import CalibConfig, SparsifyConfig, parse_pattern


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


def test_calibration_settings_checked_for_wanda_only():
    with pytest.raises(LlmpruneError, match="--samples must be >= 1"):
        SparsifyConfig("wanda", 0.5, calib=CalibConfig(samples=0))
    with pytest.raises(LlmpruneError, match="--seq-len must be >= 2"):
        SparsifyConfig("wanda", 0.5, calib=CalibConfig(seq_len=1))
    assert "calib" not in SparsifyConfig("magnitude", 0.5, calib=CalibConfig(samples=0)).to_dict()
