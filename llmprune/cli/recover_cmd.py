"""`llmprune recover PRUNED_DIR --data alpaca --out LORA_DIR`: LoRA fine-tuning (+ distillation) of a pruned model.

Runs under `accelerate launch -m llmprune recover ...` for several processes / GPUs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from llmprune.cli.common import split_list, table
from llmprune.recovery.config import LLAMA_TARGETS


def command(
    pruned_dir: Annotated[str, typer.Argument(help="Pruned model folder (or any model llmprune loads).")],
    out: Annotated[Path, typer.Option(help="Output folder for the LoRA adapter and checkpoints.")],
    data: Annotated[str, typer.Option(help="alpaca, c4, wikitext2, or a file (Alpaca .json/.jsonl, text).")] = "alpaca",
    steps: Annotated[int | None, typer.Option(help="Optimizer steps (overrides --epochs).")] = None,
    epochs: Annotated[float, typer.Option(help="Passes over the data when --steps is not given.")] = 2.0,
    batch_size: Annotated[int, typer.Option(help="Rows of --cutoff tokens per step (all processes).")] = 64,
    micro_batch_size: Annotated[int, typer.Option(help="Rows per forward/backward pass.")] = 4,
    lr: Annotated[float, typer.Option(help="Peak learning rate.")] = 1e-4,
    warmup_steps: Annotated[int, typer.Option(help="Linear warmup steps (at most 10% of the run).")] = 100,
    lora_r: Annotated[int, typer.Option(help="LoRA rank.")] = 8,
    lora_alpha: Annotated[float, typer.Option(help="LoRA alpha.")] = 16,
    lora_dropout: Annotated[float, typer.Option(help="LoRA dropout.")] = 0.05,
    targets: Annotated[str, typer.Option(help="Comma-separated module names to adapt.")] = ",".join(LLAMA_TARGETS),
    cutoff: Annotated[int, typer.Option(help="Tokens per row; longer examples are truncated.")] = 256,
    train_on_inputs: Annotated[bool, typer.Option(help="Also take loss on the Alpaca prompt.")] = True,
    max_examples: Annotated[int | None, typer.Option(help="Use only N (shuffled) examples.")] = None,
    val_size: Annotated[int, typer.Option(help="Examples held out for validation loss.")] = 0,
    eval_every: Annotated[int, typer.Option(help="Validation loss every N steps (0: at the end).")] = 0,
    save_every: Annotated[int, typer.Option(help="Checkpoint every N steps (0: never).")] = 100,
    resume: Annotated[bool, typer.Option(help="Continue from the last checkpoint in --out.")] = False,
    teacher: Annotated[str | None, typer.Option(help="Dense teacher model for distillation.")] = None,
    kd_temperature: Annotated[float, typer.Option(help="Distillation temperature.")] = 1.0,
    kd_weight: Annotated[float, typer.Option(help="loss = (1-w) CE + w T^2 KL.")] = 0.5,
    kd_topk: Annotated[int | None, typer.Option(help="Distil on the teacher's top-k logits only.")] = None,
    grad_checkpointing: Annotated[bool, typer.Option(help="Recompute activations (less memory).")] = False,
    seed: Annotated[int, typer.Option(help="Seed of data order, LoRA init and dropout.")] = 42,
    dtype: Annotated[str, typer.Option(help="auto (fp32 CPU, bf16 GPU), float32, bfloat16.")] = "auto",
    json_out: Annotated[Path | None, typer.Option("--json", help="Also write the statistics to this file.")] = None,
) -> None:
    """Recover accuracy of a pruned model with LoRA (LLM-Pruner defaults); writes the adapter to --out."""
    import torch
    from accelerate import PartialState

    from llmprune.cli.common import write_json
    from llmprune.models import load_model
    from llmprune.models.load import resolve_dtype
    from llmprune.recovery import recover, recovery_config
    from llmprune.recovery.data import load_source
    from llmprune.recovery.merge import plan_digest
    from llmprune.recovery.train import uses_cuda

    cfg = recovery_config(
        {
            "data": data,
            "steps": steps,
            "epochs": epochs,
            "batch_size": batch_size,
            "micro_batch_size": micro_batch_size,
            "lr": lr,
            "warmup_steps": warmup_steps,
            "lora_r": lora_r,
            "lora_alpha": lora_alpha,
            "lora_dropout": lora_dropout,
            "targets": split_list(targets),
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
        source="option",
    )
    load_source(cfg.data)  # a missing or malformed data file fails before the model loads
    # loaded on the CPU (recover moves it to the accelerator's device); `auto` follows the training device
    device = torch.device("cuda" if uses_cuda() else "cpu")  # (PartialState here would pre-empt recover's Accelerator)
    model, tok = load_model(pruned_dir, dtype=resolve_dtype(cfg.dtype, device), device="cpu")
    base = {"pruned_dir": str(Path(pruned_dir).expanduser().resolve()), "plan_sha256": plan_digest(pruned_dir)}
    stats = recover(model, tok, cfg, out, resume=resume, base_info=base)
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
