"""Validation of sparsify settings: a pydantic config; `sparsify_config` turns every bad input into one
LlmpruneError line that names the option and the fix."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from llmprune.data.config import CalibConfig
from llmprune.errors import LlmpruneError
from llmprune.sparsify.config import SparsifyConfig, parse_pattern, sparsify_config, wanda_calib


@pytest.mark.parametrize("sparsity", [-0.1, 1.0, 1.5])
def test_sparsity_outside_unit_interval(sparsity):
    with pytest.raises(LlmpruneError, match=r"--sparsity: Value error, sparsity must be in \[0, 1\)"):
        sparsify_config(method="magnitude", sparsity=sparsity)
    with pytest.raises(ValidationError):  # the config itself, for library users
        SparsifyConfig(method="magnitude", sparsity=sparsity)


@pytest.mark.parametrize("pattern", ["2-4", "a:b", "4:2", "0:4", "4:4", "2:4:8"])
def test_bad_patterns(pattern):
    with pytest.raises(LlmpruneError, match="pattern"):
        parse_pattern(pattern)
    with pytest.raises(LlmpruneError, match="--pattern: Value error, invalid --pattern"):
        sparsify_config(method="magnitude", pattern=pattern)


def test_pattern_implies_sparsity_and_the_default_is_half():
    assert parse_pattern("2:4") == (2, 4) and parse_pattern(None) is None and parse_pattern("") is None
    cfg = SparsifyConfig(method="wanda", pattern="2:4")
    assert cfg.target == 0.5 and cfg.sparsity == 0.5 and cfg.nm == (2, 4)
    assert SparsifyConfig(method="magnitude", pattern="1:4").target == 0.75
    assert SparsifyConfig(method="magnitude", sparsity=0.5, pattern="4:8").target == 0.5  # consistent value is fine
    assert SparsifyConfig(method="magnitude").target == 0.5


def test_pattern_conflicting_with_sparsity():
    with pytest.raises(LlmpruneError, match="implies sparsity 0.5"):
        sparsify_config(method="wanda", sparsity=0.3, pattern="2:4")


def test_unknown_method_and_pattern_with_a_global_threshold():
    with pytest.raises(LlmpruneError, match="--method: Value error, unknown method 'sparsegpt'"):
        sparsify_config(method="sparsegpt", sparsity=0.5)
    with pytest.raises(LlmpruneError, match="global-magnitude"):
        sparsify_config(method="global-magnitude", pattern="2:4")
    with pytest.raises(LlmpruneError, match="--colour: Extra inputs are not permitted"):
        sparsify_config(method="wanda", colour="red")


def test_calibration_settings_are_the_shared_config_with_wanda_defaults():
    with pytest.raises(LlmpruneError, match="--samples: .*greater than or equal to 1"):
        wanda_calib(samples=0)
    with pytest.raises(LlmpruneError, match="--seq-len: .*greater than or equal to 2"):
        wanda_calib(seq_len=1)
    calib = SparsifyConfig(method="wanda", sparsity=0.5).calib
    assert isinstance(calib, CalibConfig)  # the same class as the structured pruner's calibration settings
    assert (calib.source, calib.samples, calib.seq_len, calib.seed) == ("c4", 128, 2048, 0)
    assert SparsifyConfig(method="wanda", sparsity=0.5).to_dict()["calib"] == {
        "source": "c4",
        "samples": 128,
        "seq_len": 2048,
        "seed": 0,
    }
    assert "calib" not in SparsifyConfig(method="magnitude", sparsity=0.5).to_dict()
    assert "sequential" not in SparsifyConfig(method="magnitude", sparsity=0.5).to_dict()
    assert SparsifyConfig(method="wanda", sparsity=0.5, sequential=False).to_dict()["sequential"] is False
