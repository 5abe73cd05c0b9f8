"""Atomic outputs: nothing half-written, normal permissions, clear errors for bad paths."""

from __future__ import annotations

import os
import stat

import pytest

from llmprune.errors import LlmpruneError
from llmprune.fsutil import atomic_dir, atomic_write_json, atomic_write_text, check_writable_parent


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


def test_existing_folder_is_replaced_whole(tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "stale").write_text("old")
    with atomic_dir(tmp_path / "out") as tmp:
        (tmp / "new").write_text("x")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["new"]
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


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
