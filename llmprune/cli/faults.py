"""How the CLI reports what went wrong: one `error:` line for a foreseeable fault, a saved traceback otherwise.

Exit codes: 2 for a user error or a foreseeable fault of the machine (full disk, no permission), 3 for an
internal error (a bug: the traceback goes to a file whose path is printed), 128 + N for signal N.
"""

from __future__ import annotations

import errno
import os
import tempfile
import time
import traceback
from pathlib import Path

USER_ERROR = 2
INTERNAL_ERROR = 3

_DISK_FULL = (errno.ENOSPC, errno.EDQUOT)
_NO_ACCESS = (errno.EACCES, errno.EPERM, errno.EROFS)


def _disk_full_text(text: str) -> bool:  # safetensors' Rust errors carry the OS error in their text
    return "os error 28" in text or "No space left" in text or "StorageFull" in text


def describe_fault(e: BaseException) -> str | None:
    """One line naming a foreseeable fault and what to do, or None when `e` is a bug."""
    if isinstance(e, OSError) and e.errno in _DISK_FULL or _disk_full_text(str(e)):
        where = f" writing {e.filename}" if isinstance(e, OSError) and e.filename else ""
        return (
            f"no space left on the disk{where}; nothing was half-written: free some space or choose an output "
            "path on another disk, then run again"
        )
    if isinstance(e, OSError) and e.errno in _NO_ACCESS:
        return f"{e.strerror}: {e.filename}; check its permissions or choose another path"
    if isinstance(e, MemoryError):
        return "out of memory; use a smaller model, fewer calibration samples or --dtype bfloat16, or a larger machine"
    return None


def save_traceback(e: BaseException) -> Path | None:
    """Write the traceback of `e` to a file (the llmprune cache, else the temporary folder); returns it."""
    from llmprune.models.cache import cache_dir

    text = "".join(traceback.format_exception(e))
    name = f"crash-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.txt"
    for folder in (cache_dir() / "crashes", Path(tempfile.gettempdir())):
        try:
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / name
            path.write_text(text, encoding="utf-8")
            return path
        except OSError:
            continue
    return None
