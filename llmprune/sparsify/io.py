"""Save a sparsified model: a Hugging Face folder (dense shapes, zeros stored) plus report.json.

The folder holds what `save_pretrained` writes (config.json, model.safetensors, generation_config.json),
the tokenizer and `report.json`. It has no `llmprune.json` manifest because every shape is the
original one, so `llmprune.models.load_model` (and stock `AutoModelForCausalLM.from_pretrained`) load it
as a plain Hugging Face folder. The folder is written atomically and loaded back before it is renamed
into place: a folder whose logits differ from the in-memory model's is never written.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn

from llmprune.errors import LlmpruneError
from llmprune.fsutil import atomic_dir

REPORT = "report.json"


@torch.no_grad()
def _check_reload(model: nn.Module, folder: Path) -> None:
    from transformers import AutoModelForCausalLM

    device = next(model.parameters()).device
    dtype = next(model.parameters()).dtype
    from llmprune.surgery.io import _logits, _probe_ids  # the same probe as pruned folders' reload check

    loaded = AutoModelForCausalLM.from_pretrained(folder, dtype=dtype, use_safetensors=True).to(device).eval()
    ids = _probe_ids(model.config.vocab_size, device)
    a, b = _logits(model, ids), _logits(loaded, ids)
    if not torch.allclose(a, b, atol=1e-4, rtol=1e-4):
        raise LlmpruneError(
            f"the saved model does not reproduce the in-memory logits (max diff {(a - b).abs().max():.3g}); "
            "nothing was written. Report this as a bug"
        )


def save_sparse(model: nn.Module, tokenizer, out: str | Path, report: dict, *, verify: bool = True) -> Path:
    """Write model (+ tokenizer) and `report` into folder `out` atomically; returns the folder."""
    out = Path(out).expanduser()
    with atomic_dir(out) as tmp:
        model.save_pretrained(tmp)
        if tokenizer is not None:
            tokenizer.save_pretrained(tmp)
        (tmp / REPORT).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        if verify:
            _check_reload(model, tmp)
    return out.resolve()
