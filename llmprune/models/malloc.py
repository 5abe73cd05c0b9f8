"""Make glibc's malloc give freed memory back to the system (offload, which frees one layer after another).

By default glibc serves allocations above a *dynamic* threshold from its heap arenas, and the threshold
grows to the size of every large block freed (up to 32 MiB): after the first layers are freed, the next
ones land in the arenas, whose free space is rarely returned, and the resident set creeps up by about a
layer per layer. `return_memory_to_os()` fixes the mmap threshold at 128 KiB (tensors above it get their
own mappings, unmapped when freed) and trims the arenas; `trim()` trims them again. Both do nothing off
glibc (macOS, musl) and are idempotent. They are called by the offload loader, in process: the user
sets nothing (`MALLOC_MMAP_THRESHOLD_` in the environment has the same effect).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 128 * 1024


@functools.cache
def _libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name or "libc.so.6")
        libc.mallopt, libc.malloc_trim  # noqa: B018  (glibc only)
    except (OSError, AttributeError):
        return None
    return libc


def return_memory_to_os() -> bool:
    """Fix glibc's mmap threshold (and the trim threshold with it) so freed tensors leave the process;
    returns whether it could (glibc)."""
    libc = _libc()
    if libc is None:
        return False
    ok = libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1
    ok = libc.mallopt(M_TRIM_THRESHOLD, 2 * MMAP_THRESHOLD) == 1 and ok
    trim()
    return ok


def trim() -> None:
    """Give the free memory at the top of glibc's heaps back to the system (no-op off glibc)."""
    libc = _libc()
    if libc is not None:
        libc.malloc_trim(0)
