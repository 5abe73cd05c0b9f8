"""Atomic outputs: nothing half-written, normal permissions, clear errors for bad paths."""

from __future__ import annotations

import os
import stat

import pytest

from llmprune.errors import LlmpruneError
from llmprune.fsutil import (
    atomic_dir,
    atomic_write_json,
    atomic_write_text,
    check_replaceable,
    check_writable_parent,
)


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_atomic_file_has_umask_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        out = atomic_write_text(tmp_path / "a" / "x.txt", "hello")
        assert out.read_text() == "hello"
        assert _mode(out) == 0o644
        with atomic_dir(tmp_path / "d") as tmp:
            (tmp / "f").write_text("1")
        assert _mode(tmp_path / "d") == 0o755
    finally:
        os.umask(old)


def test_failed_block_leaves_nothing(tmp_path):
    with pytest.raises(RuntimeError), atomic_dir(tmp_path / "out") as tmp:
        (tmp / "partial").write_text("x")
        raise RuntimeError("boom")
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_an_earlier_output_is_replaced_whole(tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "llmprune.json").write_text("{}")
    (tmp_path / "out" / "stale").write_text("old")
    with atomic_dir(tmp_path / "out", replaces=("llmprune.json",)) as tmp:
        (tmp / "new").write_text("x")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["new"]
    assert [p.name for p in tmp_path.iterdir()] == ["out"]
    (tmp_path / "empty").mkdir()
    with atomic_dir(tmp_path / "empty") as tmp:  # an empty folder is always fine
        (tmp / "new").write_text("x")


def test_a_folder_of_other_files_is_never_replaced(tmp_path, monkeypatch):
    """`--out .` or `--out ~/models` must not delete the user's files."""
    mine = tmp_path / "models"
    (mine / "llama").mkdir(parents=True)
    (mine / "notes.txt").write_text("keep me")
    for replaces in ((), ("llmprune.json",)):
        with pytest.raises(LlmpruneError, match="is left as is: remove it yourself or choose another"):
            with atomic_dir(mine, replaces=replaces):
                pass
    assert sorted(p.name for p in mine.iterdir()) == ["llama", "notes.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["models"]  # no temporary folder left
    (mine / "llmprune.json").write_text("{}")  # even an earlier output, when the user works inside it
    monkeypatch.chdir(mine / "llama")
    with pytest.raises(LlmpruneError, match="holds the current folder"):
        check_replaceable(mine, ("llmprune.json",))
    monkeypatch.chdir(tmp_path)
    check_replaceable(mine, ("llmprune.json",))
    check_replaceable(mine, "any")


def test_json_round_trip(tmp_path):
    import json

    atomic_write_json(tmp_path / "r.json", {"a": [1, 2]})
    assert json.loads((tmp_path / "r.json").read_text()) == {"a": [1, 2]}


def test_parent_that_is_a_file_is_a_clear_error(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(LlmpruneError, match="is a file"):
        check_writable_parent(tmp_path / "f" / "out")
    with pytest.raises(LlmpruneError, match="is a file"):
        with atomic_dir(tmp_path / "f"):
            pass
