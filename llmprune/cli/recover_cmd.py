"""`llmprune recover PRUNED_DIR --data alpaca --out LORA_DIR`: LoRA fine-tuning (+ distillation) of a pruned model.

Every training option fills a field of `RecoveryConfig` (its default and help are that field's).
Runs under `accelerate launch -m llmprune recover ...` for several processes / GPUs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from llmprune.cli.common import SHARED_HELP, Device, Dtype, JsonOut, build_config, option, split_list, table
from llmprune.recovery.config import RecoveryConfig as R


def command(
    pruned_dir: Annotated[str, typer.Argument(help="Pruned model folder (or any model llmprune loads).")],
    out: Annotated[Path, typer.Option(help="Output folder for the LoRA adapter and checkpoints.")],
    data: str = option(R, "data"),
    preset: str = option(R, "preset"),
    steps: int | None = option(R, "steps"),
    epochs: float = option(R, "epochs"),
    batch_size: int | None = option(R, "batch_size", help=SHARED_HELP["--batch-size"]),
    micro_batch_size: int | None = option(R, "micro_batch_size"),
    lr: float = option(R, "lr"),
    warmup_steps: int = option(R, "warmup_steps"),
    lora_r: int = option(R, "lora_r"),
    lora_alpha: float = option(R, "lora_alpha"),
    lora_dropout: float = option(R, "lora_dropout"),
    targets: str | None = option(R, "targets", help="comma-separated " + (R.model_fields["targets"].description or "")),
    cutoff: int | None = option(R, "cutoff"),
    train_on_inputs: bool = option(R, "train_on_inputs"),
    max_examples: int | None = option(R, "max_examples"),
    val_size: int = option(R, "val_size"),
    eval_every: int = option(R, "eval_every"),
    save_every: int = option(R, "save_every"),
    resume: Annotated[bool, typer.Option(help="Continue from the last checkpoint in --out.")] = False,
    teacher: str | None = option(R, "teacher"),
    kd_temperature: float = option(R, "kd_temperature"),
    kd_weight: float = option(R, "kd_weight"),
    kd_topk: int | None = option(R, "kd_topk"),
    grad_checkpointing: bool = option(R, "grad_checkpointing"),
    seed: int = option(R, "seed", help=SHARED_HELP["--seed"]),
    dtype: Dtype = "auto",
    device: Device = "auto",
    json_out: JsonOut = None,
) -> None:
    """Recover accuracy of a pruned model with LoRA; writes the adapter to --out.

    Batch sizes and row length follow --preset: on a CPU 4 rows of 128 tokens per step, on a GPU LLM-Pruner's
    64 rows of 256 tokens (`--preset gpu` anywhere for LLM-Pruner's setting).
    """
    import torch
    from accelerate import PartialState

    from llmprune.cli.common import write_json
    from llmprune.models.load import load_model, resolve_dtype, stored_dtype
    from llmprune.recovery import recover
    from llmprune.recovery.data import load_source
    from llmprune.recovery.train import uses_cuda
    from llmprune.runfolder import RunFolder

    cfg = build_config(
        R,
        {
            "data": data,
            "preset": preset,
            "steps": steps,
            "epochs": epochs,
            "batch_size": batch_size,
            "micro_batch_size": micro_batch_size,
            "lr": lr,
            "warmup_steps": warmup_steps,
            "lora_r": lora_r,
            "lora_alpha": lora_alpha,
            "lora_dropout": lora_dropout,
            "targets": split_list(targets) if targets is not None else None,
            "cutoff": cutoff,
            "train_on_inputs": train_on_inputs,
            "max_examples": max_examples,
            "val_size": val_size,
            "eval_every": eval_every,
            "save_every": save_every,
            "teacher": teacher,
            "kd_temperature": kd_temperature,
            "kd_weight": kd_weight,
            "kd_topk": kd_topk,
            "grad_checkpointing": grad_checkpointing,
            "seed": seed,
            "dtype": dtype,
        },
    )
    load_source(cfg.data)  # a missing or malformed data file fails before the model loads
    # loaded on the CPU (recover moves it to the accelerator's device); `auto` follows the training device
    train_on = torch.device("cuda" if uses_cuda(device) else "cpu")  # (PartialState would pre-empt recover's)
    model, tok = load_model(
        pruned_dir, dtype=resolve_dtype(cfg.dtype, train_on, stored_dtype(pruned_dir)), device="cpu"
    )
    folder = RunFolder(pruned_dir)
    base = {"pruned_dir": str(folder.path.resolve()), "plan_sha256": folder.plan_digest()}
    stats = recover(model, tok, cfg, out, resume=resume, base_info=base, device=device)
    if not PartialState().is_main_process:
        return
    write_json(json_out, stats)
    rows = [
        ["steps", stats["steps"]],
        ["tokens", f"{stats['tokens']:,}"],
        ["tokens/s", f"{stats['tokens_per_s']:,.0f}"],
        ["loss first -> last", f"{stats['loss_first']:.4f} -> {stats['loss_last']:.4f}"],
        ["row fill", f"{stats['data']['fill']:.1%}"],
        ["seconds", stats["seconds"]],
    ]
    if stats.get("val_loss") is not None:
        rows.append(["validation loss", f"{stats['val_loss']:.4f}"])
    table(f"adapter -> {out}", ["", "value"], rows)
