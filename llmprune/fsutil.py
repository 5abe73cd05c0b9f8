"""Atomic outputs: never leave a half-written file or folder behind, never replace what the user made.

Temporaries follow one naming scheme (`llmprune.tempfiles`); folders carry llmprune's ownership marker
(`llmprune.ownership`) so that only empty folders and llmprune's own outputs are ever replaced.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import json
import os
from collections.abc import Collection, Iterator
from pathlib import Path
from typing import Any, Literal

from llmprune import tempfiles
from llmprune.errors import LlmpruneError
from llmprune.ownership import Kind, check_replaceable, write_marker

__all__ = [
    "atomic_dir",
    "atomic_write_json",
    "atomic_write_text",
    "check_replaceable",
    "check_writable_parent",
    "prepare_output",
]


def check_writable_parent(path: str | Path) -> Path:
    """Fail early, before any expensive work, when `path` cannot be created."""
    path = Path(path).expanduser().resolve()
    parent = path.parent
    probe = parent
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir():
        raise LlmpruneError(f"cannot write to {path}: {probe} is a file, not a folder")
    try:  # a real probe: permissions alone do not tell (read-only mounts, /proc, quotas)
        tempfiles.remove(tempfiles.new_dir(probe / path.name))
    except OSError as e:
        raise LlmpruneError(
            f"cannot write to {path}: {probe} is not writable ({e.strerror}); choose another output path"
        ) from e
    return path


def prepare_output(path: str | Path, replaces: Collection[str] | Literal["any"]) -> Path:
    """Every check on an output folder that needs no work done: the parent is writable, `path` is not a
    file, an existing folder may be replaced; stale temporaries of interrupted runs are swept. Commands
    call it before loading anything, `atomic_dir` again before it writes."""
    path = check_writable_parent(path)
    if path.exists() and not path.is_dir():
        raise LlmpruneError(f"{path} exists and is a file; choose a folder path for --out")
    tempfiles.sweep(path)  # may put back a previous output that an interrupted replacement left aside
    check_replaceable(path, replaces)
    return path


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths in one atomic step (Linux renameat2 RENAME_EXCHANGE); False where unsupported."""
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (AttributeError, OSError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
        return False
    raise OSError(err, os.strerror(err), str(b))


def _commit(tmp: Path, path: Path) -> None:
    """Put the finished folder `tmp` at `path`. A kill at any moment leaves the old or the new folder
    there (with renameat2); else, for one instant, the old one waits under `tempfiles.old_name`, which
    the next sweep puts back."""
    if not path.exists():
        os.replace(tmp, path)
        tempfiles.release(tmp)
        return
    if _exchange(tmp, path):  # tmp now holds the previous output
        tempfiles.remove(tmp)
        return
    old = tempfiles.old_name(path)
    tempfiles.register(old)
    os.replace(path, old)
    os.replace(tmp, path)
    tempfiles.release(tmp)
    tempfiles.remove(old)


@contextlib.contextmanager
def atomic_dir(
    path: str | Path, kind: Kind, *, overwrite: bool = True, replaces: Collection[str] | Literal["any"] | None = None
) -> Iterator[Path]:
    """Yield a temporary folder next to `path`; if the block succeeds it gets llmprune's marker of `kind`
    and replaces `path` in one step. An existing `path` is replaced only when it is empty or an llmprune
    output of a kind in `replaces` (default: `kind`), never a folder of the user's own files."""
    path = prepare_output(path, (kind,) if replaces is None else replaces)
    if path.exists() and not overwrite:
        raise LlmpruneError(f"{path} already exists; remove it or choose another --out")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = tempfiles.new_dir(path)
    try:
        yield tmp
        write_marker(tmp, kind)
        _commit(tmp, path)
    except BaseException:
        tempfiles.remove(tmp)
        raise


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write `text` to `path` through a temporary file in the same folder."""
    path = check_writable_parent(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = tempfiles.new_file(path)
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
        tempfiles.release(tmp)
    except BaseException:
        tempfiles.remove(tmp)
        raise
    return path


def atomic_write_json(path: str | Path, obj: Any) -> Path:
    return atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")
