"""The recovery loop: LoRA fine-tuning of a pruned model on packed rows, optionally distilling a teacher.

`recover(model, tokenizer, cfg, out_dir)` trains, writes the adapter (`adapter_config.json`,
`adapter_model.safetensors`, `recovery.json`) to `out_dir`, and leaves `model` as it found it (the
LoRA branches are removed again; merge them with `llmprune.recovery.merge_lora`).

- Multi-process through accelerate (`accelerate launch -m llmprune recover ...`): every process builds
  the same packed rows; step s uses rows [s*B, (s+1)*B) of a per-epoch seeded permutation, split
  evenly between processes. The loss is summed per token and divided by the target tokens of the whole
  step, so the result does not depend on the number of processes or the micro-batch size.
- bf16 autocast on GPU (fused AdamW), fp32 on CPU; gradient checkpointing on request.
- Checkpoints every `save_every` steps (see checkpoint.py); `resume=True` continues from the last one
  and reaches bit-identical adapter weights to an uninterrupted run (data order is a function of the
  step, and the RNG of every process is restored).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn
from tqdm.auto import tqdm

from llmprune.errors import LlmpruneError
from llmprune.fsutil import atomic_write_json
from llmprune.models.halfcpu import fp32_compute
from llmprune.recovery.checkpoint import (
    checkpoint_step,
    find_checkpoint,
    load_checkpoint,
    remove_checkpoints,
    save_checkpoint,
)
from llmprune.recovery.config import RecoveryConfig, recovery_config
from llmprune.recovery.data import Rows, build_datasets
from llmprune.recovery.distill import Teacher, combine, loss_sums
from llmprune.recovery.lora import ADAPTER_FILES, attach_lora

RESULT = "recovery.json"


class RowSchedule:
    """Global row order: epoch e is a permutation seeded by (seed, e); step s takes B consecutive rows."""

    def __init__(self, n_rows: int, batch_size: int, seed: int):
        self.n, self.batch, self.seed = n_rows, batch_size, seed
        self._perms: dict[int, torch.Tensor] = {}

    def _perm(self, epoch: int) -> torch.Tensor:
        if epoch not in self._perms:
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            self._perms = {epoch: torch.randperm(self.n, generator=g)}
        return self._perms[epoch]

    def rows(self, step: int) -> torch.Tensor:
        pos = torch.arange(step * self.batch, (step + 1) * self.batch)
        return torch.stack([self._perm(int(p) // self.n)[int(p) % self.n] for p in pos])


def total_steps(cfg: RecoveryConfig, n_rows: int) -> int:
    return cfg.steps if cfg.steps is not None else max(1, math.ceil(cfg.epochs * n_rows / cfg.batch_size))


def _split(cfg: RecoveryConfig, world: int) -> int:
    """Micro-batches per process per step; checks the batch divides evenly."""
    if cfg.batch_size % (cfg.micro_batch_size * world):
        raise LlmpruneError(
            f"--batch-size {cfg.batch_size} must be a multiple of --micro-batch-size {cfg.micro_batch_size} "
            f"x {world} processes"
        )
    return cfg.batch_size // (cfg.micro_batch_size * world)


def _batch(rows: Rows, idx: torch.Tensor, device: torch.device) -> tuple[torch.Tensor, ...]:
    return rows.input_ids[idx].to(device), rows.position_ids[idx].to(device), rows.labels[idx].to(device)


def _forward(model, teacher: Teacher | None, rows: Rows, idx: torch.Tensor, cfg: RecoveryConfig, device):
    ids, pos, labels = _batch(rows, idx, device)
    logits = model(input_ids=ids, position_ids=pos, use_cache=False).logits
    t_logits = teacher.logits(ids, pos) if teacher is not None else None
    return loss_sums(logits, labels, t_logits, temperature=cfg.kd_temperature, topk=cfg.kd_topk)


@torch.no_grad()
def validation_loss(model, rows: Rows, cfg: RecoveryConfig, accelerator) -> float:
    """Token-mean cross-entropy on the validation rows (sharded over processes)."""
    was_training = model.training
    model.eval()
    mine = torch.arange(accelerator.process_index, len(rows), accelerator.num_processes)
    total = torch.zeros(2, dtype=torch.float64, device=accelerator.device)
    for i in range(0, len(mine), cfg.micro_batch_size):
        s = _forward(model, None, rows, mine[i : i + cfg.micro_batch_size], cfg, accelerator.device)
        total += torch.tensor([s.ce.item(), s.tokens], dtype=torch.float64, device=accelerator.device)
    total = accelerator.reduce(total, "sum")
    model.train(was_training)
    return float(total[0] / total[1].clamp(min=1))


def _owned_recovery(out_dir: Path) -> Path | None:
    """Check that an existing, non-empty `out_dir` is an llmprune recovery folder (its marker, or for folders
    of earlier versions an llmprune checkpoint); returns its latest checkpoint. Anything else is refused and
    left untouched."""
    from llmprune.ownership import MARKER, owner_kind

    ckpt = find_checkpoint(out_dir)
    kind = owner_kind(out_dir)
    legacy = kind is None and ckpt is not None and checkpoint_step(ckpt) is not None
    if kind != "recovery" and not legacy:
        what = f"an llmprune {kind} folder" if kind else f"not an llmprune recovery folder (it has no {MARKER})"
        raise LlmpruneError(f"{out_dir} exists and is {what}; it is left as is: choose another --out")
    return ckpt


def _prepare_out(out_dir: Path, resume: bool, accelerator) -> Path | None:
    """Check --out before anything slow; returns the checkpoint to resume from (None: start afresh)."""
    from llmprune import tempfiles
    from llmprune.fsutil import check_writable_parent
    from llmprune.ownership import write_marker

    out_dir = check_writable_parent(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise LlmpruneError(f"{out_dir} is a file; choose a folder for --out")
    ckpt = None
    if out_dir.is_dir() and any(out_dir.iterdir()):
        ckpt = _owned_recovery(out_dir)
        if not resume:
            state = f"an unfinished run (checkpoint at step {checkpoint_step(ckpt)})" if ckpt else "a recovery run"
            hint = "pass --resume to continue it, or choose another --out" if ckpt else "choose another --out"
            raise LlmpruneError(f"{out_dir} holds {state}; {hint}")
    accelerator.wait_for_everyone()  # every process has checked the folder before the main one marks it
    if accelerator.is_main_process:
        if out_dir.is_dir():
            tempfiles.sweep(out_dir, inside=True)
        out_dir.mkdir(parents=True, exist_ok=True)
        write_marker(out_dir, "recovery")
    accelerator.wait_for_everyone()
    return ckpt


def _write_adapter(peft_model, out_dir: Path, result: dict) -> None:
    """Adapter files land through a temporary folder; recovery.json (written last) marks completion."""
    from llmprune import tempfiles

    with tempfiles.temp_dir(out_dir / "adapter") as tmp:
        peft_model.save_pretrained(tmp)
        for name in ADAPTER_FILES:
            os.replace(tmp / name, out_dir / name)
    atomic_write_json(out_dir / RESULT, result)


def recover(
    model: nn.Module,
    tokenizer,
    cfg: RecoveryConfig | dict,
    out_dir: str | Path,
    *,
    resume: bool = False,
    progress: bool = True,
    teacher: nn.Module | None = None,
    base_info: dict | None = None,
    on_step: Callable[[int, dict], None] | None = None,
    device: str = "auto",
) -> dict:
    """LoRA-train `model` (a pruned model) per `cfg`; write the adapter to `out_dir`; return statistics.

    `teacher` (a dense model) overrides `cfg.teacher`; `base_info` is stored in recovery.json (the merge
    step checks it); `on_step(step, stats)` runs after every step and checkpoint (tests use it to stop).
    `device` (auto, cpu, cuda) is where training runs; the preset of `cfg` (`auto`) follows it.
    Whatever happens, `model` gets its own modules, `requires_grad` flags and train/eval mode back.
    """
    from accelerate import Accelerator

    use_cuda = uses_cuda(device)
    cfg = recovery_config(cfg).resolve(cuda=use_cuda)
    accelerator = Accelerator(mixed_precision="bf16" if use_cuda else "no", cpu=not use_cuda)
    out_dir = Path(out_dir).expanduser().resolve()
    fingerprint = run_fingerprint(cfg, base_info)
    if resume and (out_dir / RESULT).is_file() and _owned_recovery(out_dir) is None:
        done = read_result(out_dir)
        was = run_fingerprint(recovery_config(done.get("config", {})).resolve(cuda=use_cuda), done.get("base"))
        changed = sorted(k for k in fingerprint if was.get(k) != fingerprint[k])
        if changed:
            raise LlmpruneError(
                f"{out_dir} holds a finished run with other settings ({', '.join(changed)}); "
                "choose another --out for this one"
            )
        if accelerator.is_main_process:
            tqdm.write(f"{out_dir} holds a finished run; nothing to resume")
        return done["stats"]
    ckpt = _prepare_out(out_dir, resume, accelerator)
    accum = _split(cfg, accelerator.num_processes)
    show = progress and accelerator.is_main_process
    train_rows, val_rows, data_info = build_datasets(tokenizer, cfg, progress=show)
    if show:
        tqdm.write(_data_line(cfg, data_info, total_steps(cfg, len(train_rows))), file=sys.stderr)
    if teacher is None and cfg.teacher:
        teacher = Teacher.load(cfg.teacher, model.config.vocab_size, dtype=cfg.dtype, device=accelerator.device)
    elif teacher is not None:
        teacher = Teacher(teacher.to(accelerator.device), model.config.vocab_size)

    grad_flags = {n: p.requires_grad for n, p in model.named_parameters()}
    was_training = model.training
    torch.manual_seed(cfg.seed)
    peft_model = attach_lora(model.to(accelerator.device), cfg)
    try:
        if cfg.grad_checkpointing:
            peft_model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        run = _Run(accelerator, peft_model, cfg, train_rows, val_rows, teacher, accum, use_cuda, fingerprint)
        stats = run.train(out_dir, ckpt if resume else None, progress=progress, on_step=on_step)
        stats["data"] = data_info
        accelerator.wait_for_everyone()
        if accelerator.is_main_process:
            result = {"config": cfg.model_dump(mode="json"), "stats": stats, "base": dict(base_info or {})}
            _write_adapter(peft_model, out_dir, result)
            remove_checkpoints(out_dir)
        accelerator.wait_for_everyone()
    finally:
        if cfg.grad_checkpointing:
            peft_model.gradient_checkpointing_disable()
        peft_model.unload()  # removes the LoRA branches from `model` again
        for n, p in model.named_parameters():
            p.requires_grad_(grad_flags.get(n, True))
        model.train(was_training)
    return stats


class _Run:
    """One training run's state: the prepared model/optimizer/scheduler and the loop over steps."""

    def __init__(
        self, accelerator, peft_model, cfg: RecoveryConfig, rows: Rows, val_rows, teacher, accum, fused, fingerprint
    ):
        from transformers import get_linear_schedule_with_warmup

        self.fingerprint = fingerprint

        self.acc, self.cfg, self.rows, self.val_rows, self.teacher, self.accum = (
            accelerator,
            cfg,
            rows,
            val_rows,
            teacher,
            accum,
        )
        self.steps = total_steps(cfg, len(rows))
        self.params = [p for p in peft_model.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(self.params, lr=cfg.lr, weight_decay=cfg.weight_decay, fused=fused)
        self.scheduler = get_linear_schedule_with_warmup(optimizer, min(cfg.warmup_steps, self.steps // 10), self.steps)
        self.model, self.optimizer = accelerator.prepare(peft_model, optimizer)
        self.schedule = RowSchedule(len(rows), cfg.batch_size, cfg.seed)

    def step(self, step: int, on_micro: Callable[[int], None] | None = None) -> tuple[torch.Tensor, int]:
        """One optimizer step; returns (global [loss, ce] per target token, real tokens in the step).
        `on_micro(rows)` runs after every micro-batch with the rows all processes did in it."""
        acc, cfg = self.acc, self.cfg
        idx = self.schedule.rows(step)
        n_targets = max(self.rows.targets(idx), 1)
        per_process = cfg.batch_size // acc.num_processes
        mine = idx[acc.process_index * per_process : (acc.process_index + 1) * per_process]
        sums = torch.zeros(2, dtype=torch.float64, device=acc.device)
        for m in range(self.accum):
            micro = mine[m * cfg.micro_batch_size : (m + 1) * cfg.micro_batch_size]
            last = m == self.accum - 1
            with contextlib.nullcontext() if last else acc.no_sync(self.model):
                s = _forward(self.model, self.teacher, self.rows, micro, cfg, acc.device)
                loss = combine(s, cfg.kd_weight)
                acc.backward(loss * (acc.num_processes / n_targets))
            sums += torch.stack([loss.detach().double(), s.ce.detach().double()])
            if on_micro is not None:
                on_micro(len(micro) * acc.num_processes)
        if cfg.max_grad_norm > 0:
            acc.clip_grad_norm_(self.params, cfg.max_grad_norm)
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        return acc.reduce(sums, "sum") / n_targets, int(self.rows.lengths[idx].sum())

    def train(self, out_dir: Path, ckpt: Path | None, *, progress: bool, on_step) -> dict:
        acc, cfg = self.acc, self.cfg
        start, history, tokens_done = 0, [], 0
        if ckpt is not None:
            state = load_checkpoint(acc, ckpt, self.model, self.optimizer, self.scheduler, self.fingerprint)
            start, history, tokens_done = state["step"], state["history"], state["tokens"]
            if start > self.steps:
                raise LlmpruneError(
                    f"{ckpt} is at step {start}, past this run's {self.steps} steps; resume with --steps {start} "
                    "or more (or the same --epochs), or choose another --out"
                )
            if acc.is_main_process:
                tqdm.write(f"resuming from {ckpt} at step {start}")
        self.model.train()
        val_history: list[tuple[int, float]] = []
        bar = tqdm(  # counts rows, so it moves (with an ETA) after every micro-batch, not only every step
            total=self.steps * cfg.batch_size,
            initial=start * cfg.batch_size,
            desc="recover",
            unit="row",
            disable=not (progress and acc.is_main_process),
        )
        t0, tokens_run = time.perf_counter(), 0
        with fp32_compute(self.model):  # bf16 weights on a CPU without bf16 kernels: fp32 matmuls
            for step in range(start, self.steps):
                sums, step_tokens = self.step(step, on_micro=bar.update)
                tokens_done += step_tokens
                tokens_run += step_tokens
                history.append(round(float(sums[0]), 6))
                done = step + 1
                if self.val_rows is not None and cfg.eval_every and done % cfg.eval_every == 0 and done < self.steps:
                    val_history.append((done, validation_loss(self.model, self.val_rows, cfg, acc)))
                tps = tokens_run / max(time.perf_counter() - t0, 1e-9)
                bar.set_postfix(
                    step=f"{done}/{self.steps}",
                    loss=f"{float(sums[0]):.4f}",
                    ce=f"{float(sums[1]):.4f}",
                    tok_s=f"{tps:,.0f}",
                )
                if cfg.save_every and done % cfg.save_every == 0 and done < self.steps:
                    state = {"step": done, "history": history, "tokens": tokens_done, "world_size": acc.num_processes}
                    save_checkpoint(
                        acc, out_dir, self.model, self.optimizer, self.scheduler, {**state, "config": self.fingerprint}
                    )
                if on_step is not None:
                    on_step(done, {"loss": history[-1]})
        bar.close()
        seconds = time.perf_counter() - t0
        return {
            "steps": self.steps,
            "start_step": start,
            "world_size": acc.num_processes,
            "tokens": tokens_done,
            "seconds": round(seconds, 2),
            "tokens_per_s": round(tokens_run / max(seconds, 1e-9), 1),
            "loss_first": history[0] if history else None,
            "loss_last": history[-1] if history else None,
            "losses": history,
            "val_loss": validation_loss(self.model, self.val_rows, cfg, acc) if self.val_rows is not None else None,
            "val_history": val_history,
            "distill": self.teacher is not None,
        }


def uses_cuda(device: str = "auto") -> bool:
    """Does `recover` train on the GPU? `auto`: CUDA present and not forced to the CPU (as `accelerate --cpu`
    does); `cpu`: no; `cuda[:N]`: yes, or LlmpruneError when there is no CUDA."""
    if device in ("cpu", "mps"):  # accelerate trains on the CPU unless CUDA is used
        return False
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise LlmpruneError(f"--device {device}: CUDA is not available here; use --device cpu or auto")
        return True
    if device != "auto":
        raise LlmpruneError(f"--device {device!r}: recovery trains on auto, cpu or cuda")
    return torch.cuda.is_available() and os.environ.get("ACCELERATE_USE_CPU", "").lower() not in ("1", "true")


def _data_line(cfg: RecoveryConfig, info: dict, steps: int) -> str:
    bounded = " (only what the steps use)" if info.get("bounded_by_steps") else ""
    return (
        f"training data: {info['examples']:,} examples{bounded} -> {info['rows']:,} rows of {cfg.cutoff} tokens "
        f"({info['fill']:.0%} filled); {steps} steps of {cfg.batch_size} rows (preset {cfg.preset})"
    )


def run_fingerprint(cfg: RecoveryConfig, base_info: dict | None) -> dict:
    """What a resumed run must share with the checkpoint: the settings, and the pruned model's plan."""
    return {**cfg.fingerprint(), "base_plan_sha256": (base_info or {}).get("plan_sha256")}


def read_result(adapter_dir: str | Path) -> dict:
    """recovery.json of a finished run ({} when absent: adapters from elsewhere merge too)."""
    path = Path(adapter_dir).expanduser() / RESULT
    if not path.is_file():
        return {}
    try:
        result = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise LlmpruneError(f"{path} is not valid JSON ({e}); the adapter folder is damaged, train it again") from e
    if not isinstance(result, dict):
        raise LlmpruneError(f"{path} is not a recovery result; the adapter folder is damaged, train it again")
    return result
