"""LoRA recovery of pruned models: train an adapter (optionally distilling the dense model), merge it.

Public API: `RecoveryConfig`, `recovery_config`, `recover`, `merge_lora`, `save_merged`.
`RecoveryConfig` imports without torch; the rest loads it on first use.
"""

from typing import Any

from llmprune.recovery.config import RecoveryConfig, recovery_config

__all__ = ["RecoveryConfig", "merge_lora", "recover", "recovery_config", "save_merged"]


def __getattr__(name: str) -> Any:
    if name in ("merge_lora", "save_merged"):
        from llmprune.recovery import merge

        return getattr(merge, name)
    if name == "recover":
        from llmprune.recovery.train import recover

        return recover
    raise AttributeError(f"module 'llmprune.recovery' has no attribute {name!r}")
