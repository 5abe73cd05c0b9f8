"""Merge a LoRA adapter into a pruned model: a plain dense model again, saved in the pruned format.

`merge_lora(model, adapter_dir)` checks that the adapter belongs to this model (targets, shapes, and
the pruning plan recorded by `recover`), merges with PEFT's `merge_and_unload(safe_merge=True)` and
refuses non-finite weights. `save_merged` writes the result with `llmprune.surgery.save_pruned` and
the pruned folder's plan, so the merged folder loads with `load_model` / `load_pruned` (no peft).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn

from llmprune.errors import LlmpruneError
from llmprune.recovery.lora import ADAPTER_FILES, linear_names, peft_quietly, refuse_tied
from llmprune.runfolder import RunFolder


def check_adapter(model: nn.Module, adapter_dir: str | Path, *, pruned_dir: str | Path | None = None) -> dict:
    """Validate `adapter_dir` against `model` before touching it; returns the adapter config."""
    from llmprune.recovery.train import read_result

    adapter_dir = Path(adapter_dir).expanduser()
    missing = [f for f in ADAPTER_FILES if not (adapter_dir / f).is_file()]
    if missing:
        raise LlmpruneError(
            f"{adapter_dir} is not a LoRA adapter folder (missing {', '.join(missing)}); pass the --out of `llmprune recover`"
        )
    try:
        config = json.loads((adapter_dir / "adapter_config.json").read_text())
    except json.JSONDecodeError as e:
        raise LlmpruneError(
            f"{adapter_dir}/adapter_config.json is not valid JSON ({e.msg}); the adapter is damaged"
        ) from e
    if config.get("peft_type") != "LORA":
        raise LlmpruneError(f"{adapter_dir} holds a {config.get('peft_type')!r} adapter; only LoRA adapters merge")
    targets = config.get("target_modules") or []
    if not isinstance(targets, str):  # a string is a peft regex over module paths: peft matches it
        absent = sorted(set(targets) - linear_names(model))
        if absent:
            raise LlmpruneError(f"adapter {adapter_dir} targets {', '.join(absent)}, which this model does not have")
        subject = lambda name: f"adapter {adapter_dir} targets {name}, which"  # noqa: E731
        refuse_tied(model, list(targets), subject, "use it unmerged (peft's PeftModel)")
    folder = RunFolder(pruned_dir) if pruned_dir is not None else None
    if folder is not None and folder.is_pruned:
        merged = folder.read_manifest().extra.get("merged_adapter")
        if merged:
            raise LlmpruneError(
                f"{folder.path} already has an adapter merged in ({merged}); merge into the unrecovered pruned folder"
            )
    trained_on = read_result(adapter_dir).get("base", {}).get("plan_sha256")
    here = folder.plan_digest() if folder is not None else None
    if trained_on and here and trained_on != here:
        raise LlmpruneError(
            f"adapter {adapter_dir} was trained on a model pruned by another plan than {pruned_dir}/plan.json; "
            "merge it into the pruned folder it was trained on"
        )
    return config


def merge_lora(model: nn.Module, adapter_dir: str | Path, *, pruned_dir: str | Path | None = None) -> nn.Module:
    """Merge the LoRA adapter in `adapter_dir` into `model` (in place); returns the merged plain model.

    Raises LlmpruneError when the adapter does not fit the model (other targets or plan: the model is
    untouched; other shapes: peft may have injected LoRA layers already) or when merging yields NaN/inf
    weights (the model may be partly merged then). After an error on shapes or merging, discard the model.
    """
    from peft import PeftModel

    from llmprune.models.safe import check_safetensors

    adapter_dir = Path(adapter_dir).expanduser()
    check_adapter(model, adapter_dir, pruned_dir=pruned_dir)
    check_safetensors(adapter_dir / "adapter_model.safetensors", "the adapter is damaged; train it again")
    try:
        with peft_quietly():
            peft_model = PeftModel.from_pretrained(model, str(adapter_dir), is_trainable=False)
    except (RuntimeError, ValueError, KeyError) as e:
        first = str(e).strip().splitlines()
        detail = next((line.strip() for line in first if "size mismatch" in line), first[0] if first else "")
        raise LlmpruneError(
            f"adapter {adapter_dir} does not fit this model ({detail}); it was trained on a differently pruned model"
        ) from e
    try:
        merged = peft_model.merge_and_unload(safe_merge=True)
    except ValueError as e:  # peft's safe_merge: "NaNs detected in the merged weights"
        peft_model.unload()
        raise LlmpruneError(f"merging {adapter_dir} produces non-finite weights ({e}); the adapter is broken") from e
    bad = [n for n, p in merged.named_parameters() if not torch.isfinite(p).all()]
    if bad:
        raise LlmpruneError(f"the merged model has non-finite weights in {', '.join(bad[:3])}; not saving it")
    return merged.eval()


def save_merged(merged: nn.Module, pruned_dir: str | Path, out_dir: str | Path, *, tokenizer=None, extra=None) -> Path:
    """Save `merged` like the pruned folder it came from (same plan, manifest, tokenizer), atomically."""
    from llmprune.surgery.io import save_pruned

    folder = RunFolder(pruned_dir)
    manifest = folder.read_manifest()
    plan = folder.read_plan()
    info = {**manifest.extra, **(extra or {})}
    return save_pruned(merged, plan, out_dir, tokenizer=tokenizer, extra=info)
