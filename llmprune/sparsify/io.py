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

from llmprune.fsutil import atomic_dir
from llmprune.models.reload import probe_ids, probe_logits, verify_reload
from llmprune.runfolder import REPORT, SHARD_SIZE


def _load_plain(folder: Path, dtype: torch.dtype, device: torch.device) -> nn.Module:
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(folder, dtype=dtype, use_safetensors=True).to(device)


def save_sparse(model: nn.Module, tokenizer, out: str | Path, report: dict, *, verify: bool = True) -> Path:
    """Write model (+ tokenizer) and `report` into folder `out` atomically; returns the folder."""
    out = Path(out).expanduser()
    param = next(model.parameters())
    ids = probe_ids(model.config.vocab_size, param.device)
    ref = probe_logits(model, ids) if verify else None
    with atomic_dir(out, "sparse") as tmp:
        model.save_pretrained(tmp, max_shard_size=SHARD_SIZE)
        if tokenizer is not None:
            tokenizer.save_pretrained(tmp)
        (tmp / REPORT).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        if ref is not None:
            verify_reload(lambda device: _load_plain(tmp, param.dtype, device), model, ids, ref)
    return out.resolve()
