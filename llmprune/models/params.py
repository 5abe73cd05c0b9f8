"""Parameter counting that counts tied tensors (embedding == lm_head) once."""

from __future__ import annotations

from torch import nn


def count_params(model: nn.Module) -> int:
    """Number of distinct parameter elements; shared storage (tied embeddings) is counted once."""
    seen: set[tuple[int, int]] = set()
    total = 0
    for _, p in model.named_parameters(remove_duplicate=False):
        key = (p.untyped_storage().data_ptr(), p.storage_offset()) if p.device.type != "meta" else (id(p), 0)
        if key in seen:
            continue
        seen.add(key)
        total += p.numel()
    return total
