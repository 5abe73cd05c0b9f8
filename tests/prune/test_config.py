"""PruneConfig: nested calibration blocks keep their own defaults when given in part; invalid combinations
are refused with the field named."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from llmprune.data.config import CalibConfig
from llmprune.prune import PruneConfig


def test_partial_calibration_blocks_keep_their_own_defaults():
    cfg = PruneConfig(sequential_calib={"source": "c4"}, reconstruct_calib={"samples": 8}, calib={"seq_len": 32})
    assert (cfg.sequential_calib.source, cfg.sequential_calib.samples, cfg.sequential_calib.seq_len) == ("c4", 128, 128)
    assert (cfg.reconstruct_calib.samples, cfg.reconstruct_calib.seq_len, cfg.reconstruct_calib.seed) == (8, 128, 1)
    assert (cfg.calib.samples, cfg.calib.seq_len) == (10, 32)


def test_a_plain_calib_config_is_taken_whole():
    cfg = PruneConfig(sequential_calib=CalibConfig(samples=3, seq_len=16, seed=5))
    assert cfg.sequential_calib.model_dump() == {"source": "wikitext2", "samples": 3, "seq_len": 16, "seed": 5}
    assert PruneConfig(**cfg.model_dump()) == cfg  # plan.json meta round-trips


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"engine": "sequential", "scope": "channel"}, "scope block"),
        ({"engine": "taylor", "offload": True}, "offload needs engine sequential"),
        ({"engine": "sequential", "allocation": "taylor", "offload": True}, "no gradients"),
        ({"sequential_calib": {"samples": 0}}, "sequential_calib.samples"),
    ],
)
def test_inconsistent_settings_are_refused(kwargs, message):
    with pytest.raises(ValidationError, match=message):
        PruneConfig(**kwargs)
