"""What the machine has left: free memory on the CPU (MemAvailable) or a GPU, and /proc fields.

Imports nothing of llmprune, so that loaders and savers (`llmprune.models.reload`) can ask without
pulling in the benchmark code.
"""

from __future__ import annotations

from pathlib import Path


def proc_kib(file: str, field: str) -> int | None:
    """A `Field:   N kB` line of /proc/self/status or /proc/meminfo, in KiB (None off Linux)."""
    try:
        for line in Path(file).read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def free_memory(device) -> int:
    """Bytes the device can still take: MemAvailable on the CPU, free memory on a GPU."""
    if getattr(device, "type", device) == "cuda":
        import torch

        return int(torch.cuda.mem_get_info(device)[0])
    kib = proc_kib("/proc/meminfo", "MemAvailable")
    if kib is None:
        return 1 << 62  # unknown: never offload on that account
    return kib * 1024
