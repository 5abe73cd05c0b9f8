"""Atomic training checkpoints: trainable weights, optimizer, scheduler, RNG of every process, step.

Layout of `OUT/checkpoint/`: `trainable.safetensors` (the LoRA tensors by parameter name),
`optimizer.pt`, `scheduler.pt` (tensors/containers only, loaded with `weights_only=True`),
`rng-<rank>.pt` and `state.json` (step, config fingerprint, running statistics). It is written into a
temporary folder (`llmprune.tempfiles`: removed if the save fails, e.g. on a full disk, or swept by the next
run if the process was killed) and renamed into place, so a kill at any moment leaves the previous complete
checkpoint (as `checkpoint/` or, mid-rename, `.checkpoint.old/`).
"""

from __future__ import annotations

import json
import os
import random
import shutil
from pathlib import Path
from typing import Any

import torch
from torch import nn

from llmprune import tempfiles
from llmprune.errors import LlmpruneError
from llmprune.models.safe import load_safetensors, load_tensors

NAME = "checkpoint"


def trainable_state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {n: p.detach().contiguous() for n, p in model.named_parameters() if p.requires_grad}


def _rng_state() -> dict[str, Any]:
    state: dict[str, Any] = {"torch": torch.get_rng_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(accelerator, out_dir: Path, model: nn.Module, optimizer, scheduler, state: dict) -> None:
    """Collective: every process calls it (each saves its RNG); process 0 writes the rest and renames."""
    from accelerate.utils import broadcast_object_list
    from safetensors.torch import save_file

    final, old = out_dir / NAME, out_dir / f".{NAME}.old"
    shared = [str(tempfiles.new_dir(final)) if accelerator.is_main_process else None]
    tmp = Path(broadcast_object_list(shared)[0])  # every process writes its RNG state into the same folder
    try:
        torch.save(_rng_state(), tmp / f"rng-{accelerator.process_index}.pt")
        if accelerator.is_main_process:
            save_file(trainable_state(accelerator.unwrap_model(model)), str(tmp / "trainable.safetensors"))
            torch.save(optimizer.state_dict(), tmp / "optimizer.pt")
            torch.save(scheduler.state_dict(), tmp / "scheduler.pt")
            (tmp / "state.json").write_text(json.dumps(state, indent=1))
        accelerator.wait_for_everyone()
        if accelerator.is_main_process:
            if final.exists():
                shutil.rmtree(old, ignore_errors=True)
                os.replace(final, old)
            os.replace(tmp, final)
            tempfiles.release(tmp)
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        if accelerator.is_main_process:
            tempfiles.remove(tmp)
        raise
    accelerator.wait_for_everyone()


def remove_checkpoints(out_dir: Path) -> None:
    """A finished run keeps no checkpoint (else a later --resume would train over the finished adapter)."""
    for name in (NAME, f".{NAME}.old", f".{NAME}.tmp"):
        shutil.rmtree(out_dir / name, ignore_errors=True)


def find_checkpoint(out_dir: Path) -> Path | None:
    """The latest complete checkpoint in `out_dir` (`checkpoint/`, or `.checkpoint.old/` mid-rename)."""
    for p in (out_dir / NAME, out_dir / f".{NAME}.old"):
        if (p / "state.json").is_file() and (p / "trainable.safetensors").is_file():
            return p
    return None


def checkpoint_step(path: Path) -> int | None:
    """The step a checkpoint folder was written at, or None when its state.json is not llmprune's."""
    try:
        state = json.loads((path / "state.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    ours = isinstance(state, dict) and {"step", "history", "tokens", "config"} <= state.keys()
    return state["step"] if ours and isinstance(state["step"], int) else None


def load_checkpoint(accelerator, path: Path, model: nn.Module, optimizer, scheduler, fingerprint: dict) -> dict:
    """Restore everything `save_checkpoint` wrote; returns its state dict. Refuses another config."""
    try:
        state = json.loads((path / "state.json").read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise LlmpruneError(f"{path}/state.json is damaged ({e}); remove {path} to start the run again") from e
    if not isinstance(state, dict) or not {"step", "history", "tokens"} <= state.keys():
        raise LlmpruneError(f"{path}/state.json lacks the run's step and history; remove {path} to start again")
    if state.get("config") != fingerprint:
        changed = sorted(k for k in fingerprint if state.get("config", {}).get(k) != fingerprint[k])
        raise LlmpruneError(
            f"{path} was written with different settings ({', '.join(changed)}); resume with the same options "
            "or choose another --out"
        )
    if state.get("world_size") != accelerator.num_processes:
        raise LlmpruneError(
            f"{path} was written by {state.get('world_size')} processes, this run has {accelerator.num_processes}; "
            "resume with the same number of processes"
        )
    rng_file = path / f"rng-{accelerator.process_index}.pt"
    if not rng_file.is_file():
        raise LlmpruneError(f"{path} lacks {rng_file.name}; the checkpoint is damaged, remove it to start again")
    fix = f"the checkpoint is damaged; remove {path} to start the run again"
    weights = load_safetensors(path / "trainable.safetensors", fix)
    params = dict(accelerator.unwrap_model(model).named_parameters())
    if set(weights) != {n for n, p in params.items() if p.requires_grad}:
        raise LlmpruneError(f"{path} holds other LoRA tensors than this model has; choose another --out")
    other = [
        f"{n} {tuple(v.shape)} vs {tuple(params[n].shape)}" for n, v in weights.items() if v.shape != params[n].shape
    ]
    if other:
        raise LlmpruneError(
            f"{path} holds LoRA tensors of other shapes ({other[0]}): it was trained on another model; "
            "choose another --out"
        )
    with torch.no_grad():
        for name, value in weights.items():
            params[name].copy_(value)
    optimizer_state = load_tensors(path / "optimizer.pt", fix)
    scheduler_state, rng_state = load_tensors(path / "scheduler.pt", fix), load_tensors(rng_file, fix)
    try:
        optimizer.load_state_dict(optimizer_state)
        scheduler.load_state_dict(scheduler_state)
        _set_rng_state(rng_state)
    except (KeyError, ValueError, TypeError, RuntimeError) as e:
        raise LlmpruneError(f"{path} holds an optimizer or RNG state of another form ({e}); {fix}") from e
    return state
