"""Attach PEFT LoRA adapters to a (pruned) model, with targets checked against the model first."""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable, Iterator

from torch import nn

from llmprune.arch import family_of
from llmprune.errors import LlmpruneError
from llmprune.recovery.config import RecoveryConfig

ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors")


def linear_names(model: nn.Module) -> set[str]:
    """Last name component of every nn.Linear in the model (q_proj, down_proj, lm_head, ...)."""
    return {name.rsplit(".", 1)[-1] for name, m in model.named_modules() if isinstance(m, nn.Linear)}


def shared_weights(model: nn.Module, targets: list[str]) -> dict[str, list[str]]:
    """Targeted linear layers whose weight another module also uses (tied embeddings): name -> the others.

    Merging a LoRA into such a weight changes every module that shares it (`lm_head` and
    `embed_tokens` of a tied model), which is not the model the adapter was trained as.
    """
    names: dict[int, list[str]] = {}
    for name, param in model.named_parameters(remove_duplicate=False):
        names.setdefault(id(param), []).append(name)
    out = {}
    for name, module in model.named_modules():
        if isinstance(module, nn.Linear) and name.rsplit(".", 1)[-1] in targets:
            others = [n for n in names.get(id(module.weight), []) if n != f"{name}.weight"]
            if others:
                out[name] = others
    return out


def check_targets(model: nn.Module, targets: list[str]) -> None:
    available = linear_names(model)
    missing = [t for t in targets if t not in available]
    if missing:
        raise LlmpruneError(
            f"LoRA target(s) {', '.join(missing)} not found in the model; its linear layers are "
            f"{', '.join(sorted(available))}"
        )
    refuse_tied(model, targets, lambda name: f"LoRA target {name}", "leave it out of the targets")


def refuse_tied(model: nn.Module, targets: list[str], subject: Callable[[str], str], fix: str) -> None:
    """LlmpruneError when a target shares its weight with another module (`shared_weights`)."""
    tied = shared_weights(model, targets)
    if tied:
        name, others = next(iter(tied.items()))
        raise LlmpruneError(
            f"{subject(name)} shares its weight with {', '.join(others)} (tied embeddings): merging would change "
            f"both, unlike the model trained; {fix}"
        )


def lora_targets(model: nn.Module, cfg: RecoveryConfig) -> list[str]:
    """The configured targets, or every attention and MLP projection of the model's family."""
    return list(cfg.targets) if cfg.targets is not None else list(family_of(model).lora_targets)


def lora_config(cfg: RecoveryConfig, targets: list[str]):
    from peft import LoraConfig, TaskType

    return LoraConfig(
        task_type=TaskType.CAUSAL_LM,
        r=cfg.lora_r,
        lora_alpha=cfg.lora_alpha,
        lora_dropout=cfg.lora_dropout,
        target_modules=list(targets),
        bias="none",
    )


def attach_lora(model: nn.Module, cfg: RecoveryConfig) -> nn.Module:
    """Wrap `model` in a PeftModel (in place: its linear layers gain LoRA branches); only LoRA trains."""
    from peft import get_peft_model

    targets = lora_targets(model, cfg)
    check_targets(model, targets)
    with peft_quietly():
        return get_peft_model(model, lora_config(cfg, targets))


@contextlib.contextmanager
def peft_quietly() -> Iterator[None]:
    """Hide transformers' FutureWarning about `is_gradient_checkpointing`, which peft reads when it wraps
    a model: a deprecation inside the libraries, nothing the user can act on."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*is_gradient_checkpointing.*", category=FutureWarning)
        yield
