"""`sparsify_(model, config, tokenizer)`: run the configured method in place and report what it achieved."""

from __future__ import annotations

import time

import torch
from torch import nn

from llmprune.sparsify.config import SparsifyConfig
from llmprune.sparsify.magnitude import magnitude_
from llmprune.sparsify.report import sparsity_report
from llmprune.sparsify.targets import check_pattern_fits, target_linears
from llmprune.sparsify.torch_prune import global_magnitude_
from llmprune.sparsify.wanda import wanda_


def check_model(model: nn.Module, config: SparsifyConfig) -> None:
    """Fail before any work when the model cannot take the config (no decoder layers, pattern too wide)."""
    linears = target_linears(model)
    if config.nm is not None:
        check_pattern_fits(linears, config.nm[1])


def sparsify_(
    model: nn.Module,
    config: SparsifyConfig,
    tokenizer=None,
    *,
    batches: torch.Tensor | None = None,
    progress: bool = True,
) -> dict:
    """Sparsify `model` in place. Wanda needs calibration `batches` or a `tokenizer` to sample them
    (`config.calib`). Returns the report: config, achieved sparsity (see `sparsity_report`), seconds."""
    check_model(model, config)
    t0 = time.perf_counter()
    calib_seconds = 0.0
    if config.method == "wanda":
        if batches is None:
            from llmprune.errors import LlmpruneError
            from llmprune.sparsify.calib import calibration_windows

            if tokenizer is None:
                raise LlmpruneError("wanda needs calibration data: pass a tokenizer (or batches) to sparsify_")
            batches = calibration_windows(tokenizer, config.calib)
        calib_seconds = time.perf_counter() - t0
        wanda_(model, batches, config.target, config.nm, sequential=config.sequential, progress=progress)
    elif config.method == "magnitude":
        magnitude_(model, config.target, config.nm, progress=progress)
    else:
        global_magnitude_(model, config.target)
    seconds = time.perf_counter() - t0
    return {
        "method": config.method,
        "config": config.to_dict(),
        "achieved": sparsity_report(model),
        "seconds": round(seconds, 2),
        "calibration_seconds": round(calib_seconds, 2),
    }
