"""One naming scheme for every temporary llmprune writes, their removal on exit, and the sweep of stale ones.

A temporary for target `DIR/NAME` is `DIR/.NAME.llmprune-tmp-<pid>-<random>` (a folder or a file). The
process that made it registers it; it is removed when the block that made it fails, when the process is
interrupted (SIGINT, SIGTERM, SIGHUP: `install_signal_cleanup`) and, as a last resort, when the CLI exits.
A process killed outright (SIGKILL, power loss) cannot clean up: the next command that writes the same
target removes temporaries whose process is gone (`sweep`) and says how much it freed.

A temporary whose name ends in `.old` holds the *previous* output during a replacement that could not be
done as one atomic exchange: if the target is missing, the sweep puts it back instead of deleting it.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from types import FrameType

MARK = ".llmprune-tmp-"
_PID = re.compile(re.escape(MARK) + r"(\d+)-")
# folders of earlier llmprune versions: `.OUT.tmp-x1y2z3w4`, `.OUT.recovery-x1y2z3w4` (mkdtemp), `.OUT.old-PID`
_LEGACY = re.compile(r"\.(tmp|recovery)-[a-z0-9_]{8}$|\.old-(\d+)$")
OLD = ".old"

_live: dict[Path, None] = {}  # insertion-ordered set of this process's temporaries


def _prefix(target: Path) -> str:
    return f".{target.name}{MARK}{os.getpid()}-"


def _make_mode_normal(path: Path, is_dir: bool) -> None:
    mask = os.umask(0)
    os.umask(mask)  # mkdtemp / mkstemp make 0700 / 0600; the final output gets the user's usual permissions
    os.chmod(path, (0o777 if is_dir else 0o666) & ~mask)


def new_dir(target: str | Path) -> Path:
    """A new empty registered temporary folder next to `target` (in its parent, which must exist)."""
    target = Path(target)
    path = Path(tempfile.mkdtemp(prefix=_prefix(target), dir=target.parent))
    _make_mode_normal(path, True)
    _live[path] = None
    return path


def new_file(target: str | Path) -> Path:
    """A new empty registered temporary file next to `target`."""
    target = Path(target)
    fd, name = tempfile.mkstemp(prefix=_prefix(target), dir=target.parent)
    os.close(fd)
    path = Path(name)
    _make_mode_normal(path, False)
    _live[path] = None
    return path


def old_name(target: Path) -> Path:
    """Where the previous output waits while it is replaced by two renames (see the module doc)."""
    return target.with_name(f"{_prefix(target)}prev{OLD}")


def register(path: Path) -> None:
    _live[Path(path)] = None


def release(path: Path) -> None:
    """`path` is no longer a temporary (renamed into place or removed)."""
    _live.pop(Path(path), None)


def remove(path: Path) -> None:
    """Remove a temporary of this process (folder or file), whatever state it is in."""
    path = Path(path)
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
    release(path)


@contextlib.contextmanager
def temp_dir(target: str | Path) -> Iterator[Path]:
    """A registered temporary folder next to `target`, removed when the block ends (whatever happens)."""
    path = new_dir(target)
    try:
        yield path
    finally:
        remove(path)


def remove_live() -> int:
    """Remove every temporary this process still has (interrupted or failed); returns how many."""
    paths = list(_live)
    for path in reversed(paths):  # nested ones first
        remove(path)
    return len(paths)


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def _size(path: Path) -> int:
    if not path.is_dir() or path.is_symlink():
        return path.lstat().st_size
    total = 0
    for root, _, files in os.walk(path):
        for f in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(root, f)).st_size
    return total


def _stale(entry: Path) -> bool:
    m = _PID.search(entry.name)
    if m:
        return not _alive(int(m.group(1)))
    legacy = _LEGACY.search(entry.name)  # only folders, as those versions made them
    return bool(legacy) and entry.is_dir() and not entry.is_symlink() and not (legacy[2] and _alive(int(legacy[2])))


def _belongs(entry: str, target: str | None) -> bool:
    if MARK not in entry and not _LEGACY.search(entry):
        return False
    return target is None or entry.lstrip(".").startswith(f"{target}.")


def sweep(target: str | Path, *, inside: bool = False) -> tuple[int, int]:
    """Remove stale temporaries of `target` (those next to it, or with `inside` every stale one in the
    folder `target`); a stale previous output (`.old`) is put back when the target is missing.
    Returns (entries removed, bytes freed) and says so on stderr when something was freed."""
    target = Path(target)
    folder, name = (target, None) if inside else (target.parent, target.name)
    if not folder.is_dir():
        return 0, 0
    count = freed = 0
    for entry in sorted(folder.iterdir()):
        if not entry.name.startswith(".") or not _belongs(entry.name, name) or not _stale(entry):
            continue
        if name is not None and entry.name.endswith(OLD) and not target.exists():
            with contextlib.suppress(OSError):
                os.replace(entry, target)
                print(f"restored the previous {target} from an interrupted replacement", file=sys.stderr)
                continue
        with contextlib.suppress(OSError):
            freed += _size(entry)
        remove(entry)
        count += 1
    if count:
        where = f"in {target}" if inside else f"next to {target}"
        print(
            f"removed {count} stale temporar{'y' if count == 1 else 'ies'} of an interrupted llmprune run {where} "
            f"({freed / 1e6:.1f} MB freed)",
            file=sys.stderr,
        )
    return count, freed


class Interrupted(BaseException):
    """SIGTERM / SIGHUP, raised (like Ctrl-C's KeyboardInterrupt, and like it no `Exception`) so that every
    `finally` and cleanup block runs; the CLI exits with 128 + the signal number."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _raise_interrupted(signum: int, frame: FrameType | None) -> None:
    raise Interrupted(signum)


def install_signal_cleanup() -> None:
    """Turn SIGTERM and SIGHUP into `Interrupted` (SIGINT already raises KeyboardInterrupt). Main thread only."""
    for sig in (signal.SIGTERM, signal.SIGHUP):
        with contextlib.suppress(ValueError, OSError):  # not the main thread / not settable here
            signal.signal(sig, _raise_interrupted)
