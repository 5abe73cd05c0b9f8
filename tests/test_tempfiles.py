"""One naming scheme for temporaries: removed on failure and on exit, swept by the next run when a process died."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from llmprune import tempfiles


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_names_carry_the_target_and_the_pid(tmp_path):
    d, f = tempfiles.new_dir(tmp_path / "out"), tempfiles.new_file(tmp_path / "x.json")
    assert d.name.startswith(f".out.llmprune-tmp-{os.getpid()}-") and d.is_dir()
    assert f.name.startswith(f".x.json.llmprune-tmp-{os.getpid()}-") and f.is_file()
    assert tempfiles.remove_live() >= 2
    assert list(tmp_path.iterdir()) == []


def test_a_failed_block_removes_its_temporary(tmp_path):
    with pytest.raises(RuntimeError), tempfiles.temp_dir(tmp_path / "out") as tmp:
        (tmp / "x").write_bytes(b"1")
        raise RuntimeError
    assert list(tmp_path.iterdir()) == []


def test_the_sweep_removes_only_stale_temporaries_of_the_target(tmp_path, capsys):
    dead = _dead_pid()
    stale = tmp_path / f".out.llmprune-tmp-{dead}-abcd1234"
    (stale / "sub").mkdir(parents=True)
    (stale / "sub" / "w").write_bytes(b"x" * 5000)
    nested = tmp_path / f"..out.llmprune-tmp-{dead}-abcd1234.llmprune-tmp-{dead}-efgh"  # a save inside a save
    nested.write_bytes(b"y" * 1000)
    legacy = tmp_path / ".out.tmp-k2j3h4g5"  # what earlier versions left
    legacy.mkdir()
    live = tempfiles.new_dir(tmp_path / "out")  # this process: alive
    other = tmp_path / f".other.llmprune-tmp-{dead}-abcd1234"  # another target's
    other.mkdir()
    mine = tmp_path / ".out.notes"  # the user's own hidden file
    mine.write_text("keep")
    lookalike = tmp_path / ".out.tmp-abcdefgh"  # a file, not a folder as earlier versions made
    lookalike.write_text("keep")
    count, freed = tempfiles.sweep(tmp_path / "out")
    assert count == 3 and freed == 6000
    assert "removed 3 stale temporaries of an interrupted llmprune run next to" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([live.name, other.name, mine.name, lookalike.name])
    tempfiles.remove(live)
    assert tempfiles.sweep(tmp_path / "out") == (0, 0)
    inside = tmp_path / "rec"
    inside.mkdir()
    (inside / f".checkpoint.llmprune-tmp-{dead}-zz").mkdir()
    (inside / "checkpoint").mkdir()
    assert tempfiles.sweep(inside, inside=True)[0] == 1
    assert [p.name for p in inside.iterdir()] == ["checkpoint"]
