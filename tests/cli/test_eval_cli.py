"""`llmprune eval` end to end through the CLI entry point."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from llmprune.cli.app import main


def _run(argv):
    with pytest.raises(SystemExit) as e:
        main(argv)
    return e.value.code


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["eval", "./no/such/model"], "model path not found"),
        (["eval", "nosuchalias"], "unknown model alias"),
        (["eval", "smollm2-135m", "--seq-len", "1"], "--seq-len: Input should be greater than or equal to 2 (got 1)"),
        (["eval", "smollm2-135m", "--ppl", "wikitext9"], "unknown data source 'wikitext9'"),
    ],
)
def test_bad_input_exits_nonzero_with_a_clear_message(argv, message, capsys):
    assert _run(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_help_lists_commands():
    out = subprocess.run([sys.executable, "-m", "llmprune", "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "eval" in out.stdout


@pytest.mark.slow
def test_eval_smollm2_json(tmp_path, smollm2):
    out = tmp_path / "out.json"
    main_code = None
    try:
        main(
            ["eval", "smollm2-135m", "--ppl", "wikitext2", "--seq-len", "64", "--max-windows", "8", "--json", str(out)]
        )
    except SystemExit as e:
        main_code = e.code
    assert main_code in (None, 0)
    data = json.loads(out.read_text())
    assert data["params"] == 134_515_008
    assert data["windows"] == 8 and data["seq_len"] == 64
    assert 10 < data["ppl"]["wikitext2"] < 200
    assert set(data) >= {"model", "params", "ppl", "seq_len", "windows", "seconds"}
