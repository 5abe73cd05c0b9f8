"""Unstructured and semi-structured (N:M) sparsity baselines: magnitude, Wanda, torch.nn.utils.prune.

    from llmprune.sparsify import SparsifyConfig, sparsify_, save_sparse
    report = sparsify_(model, SparsifyConfig(method="wanda", sparsity=0.5), tokenizer)
    save_sparse(model, tokenizer, "out/wanda50", report)

Only the decoder's attention and MLP projections are sparsified (`llmprune.sparsify.targets`); shapes
stay dense (zeros stored). The configuration imports without torch; the methods load it on first use.
"""

from importlib import import_module
from typing import Any

from llmprune.sparsify.config import METHODS, SparsifyConfig, parse_pattern, sparsify_config, wanda_calib

_LAZY = {
    "sparsify_": "llmprune.sparsify.apply",
    "calibration_windows": "llmprune.sparsify.calib",
    "save_sparse": "llmprune.sparsify.io",
    "magnitude_": "llmprune.sparsify.magnitude",
    "layer_mask": "llmprune.sparsify.masks",
    "nm_mask": "llmprune.sparsify.masks",
    "row_mask": "llmprune.sparsify.masks",
    "sparsity_report": "llmprune.sparsify.report",
    "global_magnitude_": "llmprune.sparsify.torch_prune",
    "wanda_": "llmprune.sparsify.wanda",
    "wanda_scores": "llmprune.sparsify.wanda",
}

__all__ = ["METHODS", "SparsifyConfig", "parse_pattern", "sparsify_config", "wanda_calib", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'llmprune.sparsify' has no attribute {name!r}")
