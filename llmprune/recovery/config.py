"""Validated settings of a LoRA recovery run.

Batch and row sizes come from a preset sized to the device (`preset: auto` picks `cpu` or `gpu`): `gpu` is
LLM-Pruner's `post_training.py` (64 rows of 256 tokens per step), `cpu` shows progress within a minute on
a laptop-class CPU (4 rows of 128 tokens, one per pass). An explicit `batch_size`, `micro_batch_size` or `cutoff` wins
over the preset.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from llmprune.errors import validate_config
from llmprune.models.options import DTYPE_HELP, DTYPE_NAMES

PRESETS: dict[str, dict[str, int]] = {
    "gpu": {"batch_size": 64, "micro_batch_size": 4, "cutoff": 256},  # LLM-Pruner's post_training.py
    "cpu": {"batch_size": 4, "micro_batch_size": 1, "cutoff": 128},  # the bar moves after every row
}
_SIZED = tuple(PRESETS["gpu"])


def _preset_help(field: str) -> str:
    return ", ".join(f"{name} {values[field]}" for name, values in PRESETS.items())


class RecoveryConfig(BaseModel):
    """LoRA fine-tuning of a pruned model (+ optional distillation from a teacher).

    Batch sizes count *rows* of `cutoff` tokens: examples are packed into rows, so a row usually holds
    several short Alpaca examples and no compute is spent on padding.
    """

    model_config = ConfigDict(extra="forbid")
    data: str = Field("alpaca", description="alpaca, c4, wikitext2, or a file: Alpaca .json/.jsonl, .txt, text .jsonl")
    steps: int | None = Field(None, ge=1, description="optimizer steps (overrides epochs)")
    epochs: float = Field(2.0, gt=0, description="passes over the training rows when steps is not given")
    preset: Literal["auto", "cpu", "gpu"] = Field(
        "auto",
        description="batch and row sizes for the device: gpu (LLM-Pruner: 64 rows of 256 tokens per step), "
        "cpu (4 rows of 128 tokens, one row per pass), auto (gpu when training on CUDA, else cpu)",
    )
    batch_size: int | None = Field(
        None,
        ge=1,
        description=f"rows per optimizer step, all processes together (default: {_preset_help('batch_size')})",
    )
    micro_batch_size: int | None = Field(
        None,
        ge=1,
        description=f"rows per forward/backward pass on one process (default: {_preset_help('micro_batch_size')})",
    )
    lr: float = Field(1e-4, gt=0, description="peak learning rate (AdamW)")
    max_grad_norm: float = Field(1.0, ge=0, description="clip the gradient norm (0: no clipping)")
    weight_decay: float = Field(0.0, ge=0, description="AdamW weight decay")
    warmup_steps: int = Field(100, ge=0, description="linear warmup steps (capped at 10% of the run)")
    lora_r: int = Field(8, ge=1, description="LoRA rank")
    lora_alpha: float = Field(16, gt=0, description="LoRA alpha (scale = alpha / r)")
    lora_dropout: float = Field(0.05, ge=0, lt=1, description="dropout on the LoRA input")
    targets: list[str] | None = Field(
        None, description="module names to adapt (default: every attention and MLP projection of the model's family)"
    )
    cutoff: int | None = Field(
        None, ge=8, description=f"tokens per row; longer examples are truncated (default: {_preset_help('cutoff')})"
    )
    train_on_inputs: bool = Field(True, description="false: no loss on the prompt, only on the response")
    max_examples: int | None = Field(None, ge=1, description="use only the first N examples (after shuffling)")
    val_size: int = Field(0, ge=0, description="examples held out for validation loss (0: none)")
    eval_every: int = Field(0, ge=0, description="validation loss every N steps (0: only at the end)")
    save_every: int = Field(100, ge=0, description="checkpoint every N steps (0: never)")
    grad_checkpointing: bool = Field(False, description="recompute activations in backward (less memory)")
    seed: int = Field(42, description="seed of data order, LoRA init and dropout")
    dtype: str = Field("auto", description=DTYPE_HELP)
    teacher: str | None = Field(None, description="dense teacher model for distillation (hub id, folder, alias)")
    kd_temperature: float = Field(1.0, gt=0, description="distillation temperature")
    kd_weight: float = Field(0.5, ge=0, le=1, description="loss = (1 - w) * CE + w * T^2 * KL(teacher || student)")
    kd_topk: int | None = Field(None, ge=1, description="distil on the teacher's top-k tokens (the rest as one bin)")

    @field_validator("targets")
    @classmethod
    def _targets(cls, v: list[str] | None) -> list[str] | None:
        if v is None:
            return None
        v = [t.strip() for t in v if t.strip()]
        if not v:
            raise ValueError("give at least one LoRA target module, e.g. q_proj,v_proj")
        return v

    @field_validator("dtype")
    @classmethod
    def _dtype(cls, v: str) -> str:
        if v not in DTYPE_NAMES:
            raise ValueError(f"unknown dtype {v!r}; choose one of {', '.join(DTYPE_NAMES)}")
        return v

    @model_validator(mode="after")
    def _batches(self) -> RecoveryConfig:
        if (
            self.batch_size is not None
            and self.micro_batch_size is not None
            and self.batch_size % self.micro_batch_size
        ):
            raise ValueError(
                f"batch_size {self.batch_size} is not a multiple of micro_batch_size {self.micro_batch_size}"
            )
        return self

    def resolve(self, cuda: bool) -> RecoveryConfig:
        """This config with the preset decided (`auto`: gpu when training on CUDA) and the sizes left unset
        filled from it; explicit sizes stay. Idempotent."""
        preset = self.preset if self.preset != "auto" else ("gpu" if cuda else "cpu")
        sizes = {k: v for k, v in PRESETS[preset].items() if getattr(self, k) is None}
        if "batch_size" in sizes and self.micro_batch_size is not None:  # --micro-batch-size 8 alone
            sizes["batch_size"] = max(sizes["batch_size"], self.micro_batch_size)
        if "micro_batch_size" in sizes and self.batch_size is not None:  # --batch-size 2 alone
            sizes["micro_batch_size"] = min(sizes["micro_batch_size"], self.batch_size)
        return recovery_config(self.model_dump() | sizes | {"preset": preset})

    @property
    def resolved(self) -> bool:
        return self.preset != "auto" and all(getattr(self, k) is not None for k in _SIZED)

    def fingerprint(self) -> dict[str, Any]:
        """The fields that must not change between a run and its resume (of a resolved config: the sizes
        the preset gave count, not the preset's name, so runs from before presets resume too)."""
        return self.model_dump(exclude={"save_every", "eval_every", "steps", "epochs", "preset"})


def recovery_config(data: dict[str, Any] | RecoveryConfig, *, source: str = "recovery") -> RecoveryConfig:
    """Validate a dict into a RecoveryConfig; errors name each bad field (`recovery.lora_r: ...`)."""
    return validate_config(
        RecoveryConfig, data, what="recovery settings", name=lambda loc: ".".join(map(str, (source, *loc)))
    )
