"""Atomic output helpers: never leave a half-written file or folder behind."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Literal

from llmprune.errors import LlmpruneError


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


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
        os.rmdir(tempfile.mkdtemp(prefix=".llmprune-probe-", dir=probe))
    except OSError as e:
        raise LlmpruneError(
            f"cannot write to {path}: {probe} is not writable ({e.strerror}); choose another output path"
        ) from e
    return path


def check_replaceable(path: str | Path, replaces: Sequence[str] | Literal["any"]) -> None:
    """An existing folder is replaced only when it is empty or an earlier output of the same kind.

    `replaces` names the files that mark such an output (e.g. `llmprune.json`); "any" is for llmprune's
    own cache folders. A folder holding the current working directory is never replaced.
    """
    path = Path(path).expanduser().resolve()
    if not path.is_dir() or not any(path.iterdir()):
        return
    cwd = Path.cwd().resolve()
    if cwd == path or path in cwd.parents:
        raise LlmpruneError(f"{path} holds the current folder; choose a new folder for the output")
    if replaces == "any" or any((path / name).exists() for name in replaces):
        return
    what = f"is not an earlier llmprune output (it has no {' or '.join(replaces)})" if replaces else "is not empty"
    raise LlmpruneError(f"{path} exists and {what}; it is left as is: remove it yourself or choose another output path")


@contextlib.contextmanager
def atomic_dir(
    path: str | Path, *, overwrite: bool = True, replaces: Sequence[str] | Literal["any"] = ()
) -> Iterator[Path]:
    """Yield a temporary folder next to `path`; rename it onto `path` only if the block succeeds.

    An existing folder at `path` is replaced whole, but only when it is empty or holds one of the files
    named in `replaces` (an earlier output of the same kind): never a folder of the user's own files.
    """
    path = check_writable_parent(path)
    if path.exists() and not path.is_dir():
        raise LlmpruneError(f"{path} exists and is a file; choose a folder path for the output")
    if path.exists() and not overwrite:
        raise LlmpruneError(f"{path} already exists; remove it or choose another --out")
    check_replaceable(path, replaces)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.tmp-", dir=path.parent))
    os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes 0700; the final folder gets normal permissions
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if path.exists():
        old = path.with_name(f".{path.name}.old-{os.getpid()}")
        os.replace(path, old)
        os.replace(tmp, path)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, path)


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write `text` to `path` through a temporary file in the same folder."""
    path = check_writable_parent(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; the final file gets normal permissions
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return path


def atomic_write_json(path: str | Path, obj: Any) -> Path:
    return atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")
