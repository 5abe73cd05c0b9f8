"""Atomic outputs: nothing half-written, normal permissions, clear errors for bad paths."""

from __future__ import annotations

import json
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
from llmprune.ownership import MARKER, owner_kind, write_marker


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_atomic_file_has_umask_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        out = atomic_write_text(tmp_path / "a" / "x.txt", "hello")
        assert out.read_text() == "hello"
        assert _mode(out) == 0o644
        with atomic_dir(tmp_path / "d", "run") as tmp:
            (tmp / "f").write_text("1")
        assert _mode(tmp_path / "d") == 0o755
    finally:
        os.umask(old)


def test_failed_block_leaves_nothing(tmp_path):
    with pytest.raises(RuntimeError), atomic_dir(tmp_path / "out", "run") as tmp:
        (tmp / "partial").write_text("x")
        raise RuntimeError("boom")
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_an_earlier_output_is_replaced_whole(tmp_path):
    with atomic_dir(tmp_path / "out", "run") as tmp:
        (tmp / "stale").write_text("old")
    assert owner_kind(tmp_path / "out") == "run"
    with atomic_dir(tmp_path / "out", "pruned", replaces=("run", "pruned")) as tmp:
        (tmp / "new").write_text("x")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [MARKER, "new"]
    assert owner_kind(tmp_path / "out") == "pruned"
    assert [p.name for p in tmp_path.iterdir()] == ["out"]
    (tmp_path / "empty").mkdir()
    with atomic_dir(tmp_path / "empty", "report") as tmp:  # an empty folder is always fine
        (tmp / "new").write_text("x")


def test_a_folder_of_other_files_is_never_replaced(tmp_path, monkeypatch):
    """`--out .` or `--out ~/models`, or a folder that merely holds a file of a common name, is never replaced."""
    mine = tmp_path / "models"
    (mine / "llama").mkdir(parents=True)
    (mine / "notes.txt").write_text("keep me")
    for name in ("report.md", "report.json", "llmprune.json", MARKER):  # generic names, or a damaged marker
        (mine / name).write_text("{}")
        with pytest.raises(LlmpruneError, match="is not an llmprune output.*left as is: remove it yourself"):
            with atomic_dir(mine, "run"):
                pass
        (mine / name).unlink()
    assert sorted(p.name for p in mine.iterdir()) == ["llama", "notes.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["models"]  # no temporary folder left
    write_marker(mine, "report")
    with pytest.raises(LlmpruneError, match="is an llmprune report folder, not a run or pruned output"):
        check_replaceable(mine, ("run", "pruned"))
    write_marker(mine, "run")
    monkeypatch.chdir(mine / "llama")  # even an earlier output, when the user works inside it
    with pytest.raises(LlmpruneError, match="holds the current folder"):
        check_replaceable(mine, ("run",))
    monkeypatch.chdir(tmp_path)
    check_replaceable(mine, ("run",))
    check_replaceable(tmp_path / "models", "any")


def test_a_pruned_folder_of_an_earlier_version_counts_as_ours(tmp_path):
    old = tmp_path / "old"
    old.mkdir()
    (old / "llmprune.json").write_text(json.dumps({"format": "llmprune-pruned", "version": 1}))
    assert owner_kind(old) == "pruned"
    check_replaceable(old, ("run", "pruned"))


def test_a_kill_mid_replacement_leaves_old_or_new(tmp_path, monkeypatch):
    """Without an atomic exchange the previous output waits aside for an instant; the next sweep restores it."""
    import llmprune.fsutil as fsutil

    monkeypatch.setattr(fsutil, "_exchange", lambda a, b: False)
    with atomic_dir(tmp_path / "out", "run") as tmp:
        (tmp / "v").write_text("1")
    with atomic_dir(tmp_path / "out", "run") as tmp:
        (tmp / "v").write_text("2")
    assert (tmp_path / "out" / "v").read_text() == "2" and len(list(tmp_path.iterdir())) == 1
    # what a kill between the two renames leaves: the previous output aside, named for a dead process
    aside = tmp_path / ".out.llmprune-tmp-999999999-prev.old"
    os.replace(tmp_path / "out", aside)
    with atomic_dir(tmp_path / "out", "run") as tmp:
        assert (tmp_path / "out" / "v").read_text() == "2"  # put back before anything else
        (tmp / "v").write_text("3")
    assert (tmp_path / "out" / "v").read_text() == "3" and len(list(tmp_path.iterdir())) == 1


def test_json_round_trip(tmp_path):
    import json

    atomic_write_json(tmp_path / "r.json", {"a": [1, 2]})
    assert json.loads((tmp_path / "r.json").read_text()) == {"a": [1, 2]}


def test_parent_that_is_a_file_is_a_clear_error(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(LlmpruneError, match="is a file"):
        check_writable_parent(tmp_path / "f" / "out")
    with pytest.raises(LlmpruneError, match="is a file"):
        with atomic_dir(tmp_path / "f", "run"):
            pass
