"""Physical surgery: replay a `PrunePlan` on a model, and save/load pruned models.

Public API: `prune_`, `mask_`, `save_pruned`, `load_pruned`, `stock_loadable`, `uniform_head_options`.
"""

from llmprune.surgery.apply import check_plan, current_shape, mask_, prune_
from llmprune.surgery.io import load_pruned, read_manifest, save_pruned
from llmprune.surgery.shapes import StockCheck, stock_loadable, uniform_head_options

__all__ = [
    "StockCheck",
    "check_plan",
    "current_shape",
    "load_pruned",
    "mask_",
    "prune_",
    "read_manifest",
    "save_pruned",
    "stock_loadable",
    "uniform_head_options",
]
