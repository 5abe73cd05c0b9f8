"""Attach PEFT LoRA adapters to a (pruned) model, with targets checked against the model first."""

from __future__ import annotations

from torch import nn

from llmprune.errors import LlmpruneError
from llmprune.recovery.config import RecoveryConfig

ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors")


def linear_names(model: nn.Module) -> set[str]:
    """Last name component of every nn.Linear in the model (q_proj, down_proj, lm_head, ...)."""
    return {name.rsplit(".", 1)[-1] for name, m in model.named_modules() if isinstance(m, nn.Linear)}


def check_targets(model: nn.Module, targets: list[str]) -> None:
    available = linear_names(model)
    missing = [t for t in targets if t not in available]
    if missing:
        raise LlmpruneError(
            f"LoRA target(s) {', '.join(missing)} not found in the model; its linear layers are "
            f"{', '.join(sorted(available))}"
        )


def lora_config(cfg: RecoveryConfig):
    from peft import LoraConfig, TaskType

    return LoraConfig(
        task_type=TaskType.CAUSAL_LM,
        r=cfg.lora_r,
        lora_alpha=cfg.lora_alpha,
        lora_dropout=cfg.lora_dropout,
        target_modules=list(cfg.targets),
        bias="none",
    )


def attach_lora(model: nn.Module, cfg: RecoveryConfig) -> nn.Module:
    """Wrap `model` in a PeftModel (in place: its linear layers gain LoRA branches); only LoRA trains."""
    from peft import get_peft_model

    check_targets(model, cfg.targets)
    return get_peft_model(model, lora_config(cfg))
