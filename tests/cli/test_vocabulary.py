"""One option vocabulary: every command's --help renders, and an option several commands share has one name,
one meaning (help) and one default, except where `llmprune.cli.common` says why not."""

from __future__ import annotations

import time
from collections import defaultdict

import pytest
import typer
from typer.testing import CliRunner

from llmprune.cli.app import COMMANDS, app
from llmprune.cli.common import COMMAND_DEFAULTS, OWN_HELP, SHARED_HELP

COMMAND = {c.name: c for c in typer.main.get_command(app).commands.values()}


def _shared() -> dict[str, list[tuple[str, typer.core.TyperOption]]]:
    by_name = defaultdict(list)
    for name, command in COMMAND.items():
        for p in command.params:
            if isinstance(p, typer.core.TyperOption):
                for decl in p.opts:
                    by_name[decl].append((name, p))
    return {k: v for k, v in by_name.items() if len(v) > 1}


@pytest.mark.parametrize("name", [name for _, name in COMMANDS])
def test_every_help_renders(name):
    result = CliRunner().invoke(app, [name, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0 and "--help" in result.output, result.output


def test_shared_options_have_one_meaning_and_one_default():
    shared = _shared()
    assert {"--device", "--dtype", "--json", "--layers", "--seed", "--seq-len"} <= set(shared)
    for decl, uses in shared.items():
        helps = {p.help for _, p in uses}
        defaults = {repr(p.default) for _, p in uses}
        flags = {p.is_flag for _, p in uses}
        assert len(flags) == 1, f"{decl} is a flag in some commands, a value in others: {uses}"
        if decl not in OWN_HELP:
            assert len(helps) == 1, f"{decl} means different things: {[(c, p.help) for c, p in uses]}"
        if decl not in COMMAND_DEFAULTS:
            assert len(defaults) == 1, f"{decl} has different defaults: {[(c, p.default) for c, p in uses]}"
    for listed in (*COMMAND_DEFAULTS, *OWN_HELP, *SHARED_HELP):  # no stale exceptions
        assert listed in shared, f"{listed} is listed as shared but only one command takes it"


def test_json_is_a_file_everywhere_and_device_defaults_to_auto():
    for decl, command in [("--json", c) for c in ("eval", "bench", "groups", "recover", "sparsify")]:
        opt = next(p for p in COMMAND[command].params if decl in getattr(p, "opts", []))
        assert not opt.is_flag and opt.default is None, command
    for command in ("prune", "eval", "bench", "recover", "sparsify"):
        opt = next(p for p in COMMAND[command].params if "--device" in getattr(p, "opts", []))
        assert opt.default == "auto", command


def test_a_bad_layer_range_fails_from_config_json_before_the_model_loads(tiny_dir, tmp_path, monkeypatch, capsys):
    import llmprune.models.load as load
    from llmprune.cli.app import main

    def never(*a, **k):
        raise AssertionError("the model was loaded")

    monkeypatch.setattr(load, "load_model", never)
    model = tiny_dir("llama")  # 3 layers
    t0 = time.perf_counter()
    with pytest.raises(SystemExit) as e:
        main(["prune", str(model), "--ratio", "0.2", "--layers", "4-99", "--out", str(tmp_path / "o")])
    assert e.value.code == 2 and time.perf_counter() - t0 < 10
    assert "--layers: layer range 4-99 is out of bounds: the model has 3 layers (0-2)" in capsys.readouterr().err
    recipe = tmp_path / "r.yaml"
    recipe.write_text(f"model: {model}\nprune: {{ratio: 0.2, layers: 1-7}}\n")
    with pytest.raises(SystemExit) as e:
        main(["run", str(recipe), "--out", str(tmp_path / "o")])
    assert e.value.code == 2 and "prune.layers: layer range 1-7 is out of bounds" in capsys.readouterr().err
