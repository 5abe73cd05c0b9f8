"""Physical surgery: replay a `PrunePlan` on a model, and save/load pruned models.

Public API: `prune_`, `mask_`, `check_plan`, `current_shape`, `save_pruned`, `load_pruned`, `read_manifest`.
"""

from llmprune.surgery.apply import check_plan, current_shape, mask_, prune_
from llmprune.surgery.io import load_pruned, read_manifest, save_pruned

__all__ = ["check_plan", "current_shape", "load_pruned", "mask_", "prune_", "read_manifest", "save_pruned"]
