"""Command-line options come from the config fields they fill: same default, the field's description as help."""

from __future__ import annotations

import pytest
import typer

from llmprune.cli.app import app
from llmprune.cli.common import field_default
from llmprune.data.config import CalibConfig
from llmprune.eval.config import EvalConfig
from llmprune.perf.config import BenchConfig
from llmprune.prune.config import PruneConfig
from llmprune.recovery.config import RecoveryConfig
from llmprune.sparsify.config import WANDA_CALIB, SparsifyConfig

COMMAND = {c.name: c for c in typer.main.get_command(app).commands.values()}
RENAMED = {"heads": "prune_heads"}  # option name -> field name, where they differ


def _options(name: str) -> dict:
    return {p.name: p for p in COMMAND[name].params if isinstance(p, typer.core.TyperOption)}


@pytest.mark.parametrize(
    "command, config, skip",
    [
        ("prune", PruneConfig, {"calib"}),  # --calib is the calibration source (next test)
        ("eval", EvalConfig, {"ppl", "tasks", "seq_len", "batch_size"}),  # comma-separated; shared help (SHARED_HELP)
        ("recover", RecoveryConfig, {"batch_size", "seed"}),
        ("bench", BenchConfig, set()),
        ("sparsify", SparsifyConfig, {"calib"}),
    ],
)
def test_defaults_and_help_are_the_config_fields(command, config, skip):
    options = _options(command)
    checked = 0
    for name, opt in options.items():
        field = RENAMED.get(name, name)
        if field not in config.model_fields or field in skip:
            continue
        assert opt.default == field_default(config, field), f"{command} --{name}"
        described = (config.model_fields[field].description or "").split(";")[0].rstrip(".")
        assert described[1:] in (opt.help or ""), f"{command} --{name}: help is not the field's description"
        checked += 1
    assert checked >= 4


def test_calibration_options_default_to_the_command_s_calibration():
    prune, sparsify = _options("prune"), _options("sparsify")
    calib = PruneConfig().calib
    assert [prune[k].default for k in ("calib", "samples", "seq_len", "seed")] == [
        calib.source,
        calib.samples,
        calib.seq_len,
        calib.seed,
    ]
    assert [sparsify[k].default for k in ("calib", "samples", "seq_len", "seed")] == list(WANDA_CALIB.values())
    assert prune["reconstruct_samples"].default == PruneConfig().reconstruct_calib.samples
    assert set(CalibConfig.model_fields) == {"source", "samples", "seq_len", "seed"}


def test_bad_values_name_the_option(capsys):
    from llmprune.cli.app import main

    with pytest.raises(SystemExit) as e:
        main(["prune", "smollm2-135m", "--out", "/tmp/never-written", "--ratio", "2"])
    err = capsys.readouterr().err
    assert e.value.code == 2 and "--ratio: Input should be less than 1 (got 2.0)" in err
    with pytest.raises(SystemExit):
        main(["prune", "smollm2-135m", "--out", "/tmp/never-written", "--samples", "0"])
    assert "--samples: Input should be greater than or equal to 1 (got 0)" in capsys.readouterr().err
