"""Check a just-written model folder by loading it back: `verify_reload`, used by every writer of models.

`save_pruned` (pruned folders) and `save_sparse` (sparse folders) write into a temporary folder, load
it back and compare it with the model in memory before the folder is renamed into place: a folder that
cannot be loaded back is never written.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from llmprune.errors import LlmpruneError


def probe_ids(vocab: int, device: torch.device) -> torch.Tensor:
    """The fixed (1, 24) token ids every written folder is checked with after loading it back."""
    return ((torch.arange(24, dtype=torch.long) * 7919 + 13) % vocab).unsqueeze(0).to(device)


@torch.no_grad()
def probe_logits(model: nn.Module, ids: torch.Tensor) -> torch.Tensor:
    """fp32 logits of `model` on `ids` in eval mode (the training flag is restored)."""
    training = model.training
    model.eval()
    try:
        return model(ids).logits.float()
    finally:
        model.train(training)


RELOAD_MARGIN = 512 * 2**20  # bytes kept free beyond a second copy's weights when reloading on the GPU


def model_bytes(model: nn.Module) -> int:
    unique = {t.data_ptr(): t for t in model.state_dict().values()}  # tied weights once
    return sum(t.numel() * t.element_size() for t in unique.values())


def reload_fits(free: int, weights: int, *, cpu: bool = False) -> bool:
    """Is there room for a second copy of `weights` bytes (and its probe) in `free` bytes? On the CPU `free`
    (MemAvailable) counts the page cache, which holds the files just written, and the second copy would
    raise the process's peak by the model's size: it is loaded only when twice the weights fit (a pruned
    7B model on a 24 GiB machine is checked from its files, keeping the peak at the dense model's)."""
    return free >= weights * (2.0 if cpu else 1.05) + RELOAD_MARGIN


def reload_plan(model: nn.Module) -> tuple[torch.device, str]:
    """How a just-written folder is checked: loaded on the model's device when a second copy fits there
    ("logits": the probe logits are compared), else on the CPU ("weights": every tensor, bit for bit), or,
    when the CPU has no room for a second copy either, read back from its files one tensor at a time
    ("files", see `verify_files`)."""
    from llmprune.perf.memory import free_memory

    device = next(model.parameters()).device
    if device.type == "cuda" and not reload_fits(torch.cuda.mem_get_info(device)[0], model_bytes(model)):
        device = torch.device("cpu")
        return device, "weights" if reload_fits(free_memory(device), model_bytes(model), cpu=True) else "files"
    if device.type == "cpu" and not reload_fits(free_memory(device), model_bytes(model), cpu=True):
        return device, "files"
    return device, "logits"


def verify_files(files: list, model: nn.Module) -> None:
    """Every tensor of the safetensors `files` equals the model's bit for bit, and every weight of the model
    is in them (tied weights once), reading one tensor at a time: the check for models too large to load
    twice. Else LlmpruneError: the caller writes nothing."""
    from safetensors import safe_open

    want = model.state_dict()
    seen: set[str] = set()
    for file in files:
        with safe_open(str(file), framework="pt") as f:
            for name in f.keys():
                got = f.get_tensor(name)
                if name not in want or got.dtype != want[name].dtype or not torch.equal(got, want[name].cpu()):
                    raise LlmpruneError(
                        f"the written folder reads back with a different {name}; nothing was written. "
                        "This is a bug in llmprune: please report it"
                    )
                seen.add(name)
    stored = {t.data_ptr() for n, t in want.items() if n in seen}
    missing = [n for n, t in want.items() if n not in seen and t.data_ptr() not in stored]
    if missing:
        raise LlmpruneError(
            f"the written folder lacks {', '.join(missing[:3])}; nothing was written. "
            "This is a bug in llmprune: please report it"
        )


def verify_reload(
    load: Callable[[torch.device], nn.Module],
    model: nn.Module,
    ids: torch.Tensor,
    ref: torch.Tensor,
    files: Callable[[], list] | None = None,
) -> None:
    """Load a just-written folder with `load(device)` and check it against the in-memory `model`.

    Where `reload_plan` says: on the model's device its `probe_logits` on `ids` must equal `ref` (the
    model's) to 1e-4 relative in fp32, 2e-2 in half precision; on the CPU (no room on the GPU for a second
    copy) every tensor must equal the model's bit for bit; with no room on the CPU either, the weight
    `files()` are read back one tensor at a time (`verify_files`), without building a second model. Else
    LlmpruneError: the caller writes nothing.
    """
    device, by = reload_plan(model)
    if by == "files" and files is not None:
        verify_files(files(), model)
        return
    try:
        reloaded = load(device)
        got = probe_logits(reloaded, ids) if by == "logits" else None
    except torch.OutOfMemoryError as e:
        raise LlmpruneError(
            "out of memory loading the written folder back to check it (a second copy of the model); free "
            "memory, or from Python save with verify=False; nothing was written"
        ) from e
    except Exception as e:  # any failure to load back means the folder must not be written
        raise LlmpruneError(
            f"the written folder does not load back ({type(e).__name__}: {e}); nothing was written"
        ) from e
    if got is None:
        _same_weights(reloaded, model)
        return
    del reloaded
    dtype = next(model.parameters()).dtype
    tol = 1e-4 if dtype == torch.float32 else 2e-2
    err = (got - ref).abs().max().item()
    if not err <= tol * max(1.0, ref.abs().max().item()):
        raise LlmpruneError(
            f"the written folder loads back with different logits (max |diff| {err:.3g}); nothing was written. "
            "This is a bug in llmprune: please report it"
        )


def _same_weights(reloaded: nn.Module, model: nn.Module) -> None:
    got, want = reloaded.state_dict(), model.state_dict()
    if got.keys() != want.keys():
        diff = sorted(got.keys() ^ want.keys())
        raise LlmpruneError(
            f"the written folder loads back with other tensors ({', '.join(diff[:3])}); nothing was written. "
            "This is a bug in llmprune: please report it"
        )
    for name, tensor in want.items():  # one tensor at a time onto the CPU
        if got[name].dtype != tensor.dtype or not torch.equal(got[name], tensor.to(got[name].device)):
            raise LlmpruneError(
                f"the written folder loads back with a different {name}; nothing was written. "
                "This is a bug in llmprune: please report it"
            )
