"""Unstructured and semi-structured (N:M) sparsity baselines: magnitude, Wanda, torch.nn.utils.prune.

    from llmprune.sparsify import SparsifyConfig, sparsify_, save_sparse
    report = sparsify_(model, SparsifyConfig("wanda", 0.5), tokenizer)
    save_sparse(model, tokenizer, "out/wanda50", report)

Only the decoder's q/k/v/o/gate/up/down Linear layers are sparsified; shapes stay dense (zeros stored).
"""

from llmprune.sparsify.apply import sparsify_
from llmprune.sparsify.calib import calibration_windows
from llmprune.sparsify.config import METHODS, CalibConfig, SparsifyConfig, parse_pattern, wanda_calib
from llmprune.sparsify.io import save_sparse
from llmprune.sparsify.magnitude import magnitude_
from llmprune.sparsify.masks import layer_mask, nm_mask, row_mask
from llmprune.sparsify.report import sparsity_report
from llmprune.sparsify.torch_prune import global_magnitude_
from llmprune.sparsify.wanda import RowNorms, wanda_, wanda_scores

__all__ = [
    "METHODS",
    "CalibConfig",
    "RowNorms",
    "SparsifyConfig",
    "calibration_windows",
    "global_magnitude_",
    "layer_mask",
    "magnitude_",
    "nm_mask",
    "parse_pattern",
    "row_mask",
    "save_sparse",
    "sparsify_",
    "sparsity_report",
    "wanda_",
    "wanda_calib",
    "wanda_scores",
]
