"""LoRA recovery of pruned models: train an adapter (optionally distilling the dense model), merge it.

Public API: `RecoveryConfig`, `recover`, `merge_lora`, `save_merged`.
"""

from llmprune.recovery.config import RecoveryConfig, recovery_config
from llmprune.recovery.merge import merge_lora, save_merged
from llmprune.recovery.train import recover

__all__ = ["RecoveryConfig", "merge_lora", "recover", "recovery_config", "save_merged"]
