"""Save and load pruned models (the files are `llmprune.runfolder`'s: weights, config, plan, manifest).

`stock_loadable: true` in the manifest (uniform widths that the family's config class accepts, see
`llmprune.arch.stock`) means `config.json` states the true shapes and stock
`AutoModelForCausalLM.from_pretrained` loads the folder. Otherwise `config.json` is a valid skeleton
(stock loading fails with a size mismatch) and the folder loads with `load_pruned` (and so every
llmprune command): it builds the family's stock architecture from `config.json` on the meta device,
gives every layer the manifest's widths, and loads the weights strictly. Such folders also carry
`modeling_llmprune.py` + `auto_map`, so `AutoModelForCausalLM.from_pretrained(path,
trust_remote_code=True)` loads them too (remote_code.py).

`save_pruned` writes into a temporary folder, loads it back with `load_pruned` and compares it with the
in-memory model (`llmprune.models.reload.verify_reload`); only then is the folder renamed into place.
A folder that cannot be loaded back is never written.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from llmprune.arch import (
    describe,
    family_of,
    layer_norm_eps,
)
from llmprune.arch.stock import ADDED, NORM_EPS, StockCheck
from llmprune.errors import LlmpruneError
from llmprune.fsutil import atomic_dir
from llmprune.models.params import count_params
from llmprune.models.reload import probe_ids, probe_logits, verify_reload
from llmprune.ownership import RUN_KINDS
from llmprune.prune.plan import PrunePlan
from llmprune.runfolder import MANIFEST, SHARD_SIZE, Manifest, RunFolder
from llmprune.surgery.build import build_model
from llmprune.surgery.remote_code import write_remote_code
from llmprune.surgery.shapes import sync_config_


def build_manifest(model: nn.Module, plan: PrunePlan, extra: dict | None = None) -> Manifest:
    """The manifest of a model pruned by `plan`; raises if the model's shapes are not what the plan makes."""
    plan.validate()
    lay = describe(model)
    hidden, kept, shapes = plan.kept_shapes()
    if (lay.hidden_size, list(lay.layers)) != (hidden, shapes) or lay.head_dim != plan.base.head_dim:
        raise LlmpruneError(
            "the model's shapes are not those the plan produces; call prune_(model, plan) on the original model "
            "before save_pruned, and pass the same plan"
        )
    stock = sync_config_(model)
    config_eps = float(getattr(model.config, lay.family.config_norm_eps))
    norm_eps = [
        {path: eps for path, eps in layer_norm_eps(model, lay, i).items() if eps != config_eps}
        for i in range(lay.num_layers)
    ]
    added = list(lay.added_biases(model.config))
    if stock.ok and any(norm_eps):
        stock = StockCheck(False, stock.uniform, NORM_EPS)
    if stock.ok and added:
        stock = StockCheck(False, stock.uniform, f"{' and '.join(added)} projections carry refit biases {ADDED}")
    return Manifest.of(
        lay,
        kept,
        stock,
        norm_eps,
        added_biases=added,
        base_model=plan.meta.get("model") or getattr(model.config, "_name_or_path", "") or "",
        params=count_params(model),
        extra=dict(extra or {}),
    )


def write_pruned_files(folder: Path, model: nn.Module, plan: PrunePlan, manifest: Manifest, tokenizer: Any) -> None:
    """What a pruned folder holds besides config and weights: modeling file (when not stock-loadable), plan,
    manifest, tokenizer (when given)."""
    if not manifest.stock_loadable:
        write_remote_code(folder, family_of(model), manifest.shapes, manifest.norm_eps, manifest.added_biases)
    run = RunFolder(folder)
    run.write_plan(plan)
    run.write_manifest(manifest)
    if tokenizer is not None:
        tokenizer.save_pretrained(folder)


def read_manifest(path: str | Path) -> Manifest:
    """The validated manifest of a pruned folder (`RunFolder(path).read_manifest()`)."""
    return RunFolder(path).read_manifest()


def save_pruned(
    model: nn.Module,
    plan: PrunePlan,
    out_dir: str | Path,
    *,
    tokenizer: Any = None,
    extra: dict | None = None,
    verify: bool = True,
) -> Path:
    """Write the pruned `model` (and `plan`, manifest, tokenizer) to `out_dir` atomically; returns the path.

    With `verify` (default) the folder is loaded back with `load_pruned` and must match the in-memory
    model (`verify_reload`: probe logits on the model's device, or every tensor on the CPU when the GPU
    has no room for a second copy), else LlmpruneError and nothing is written. `verify=False` skips it.
    """
    manifest = build_manifest(model, plan, extra)
    param = next(model.parameters())
    ids = probe_ids(model.config.vocab_size, param.device)
    ref = probe_logits(model, ids) if verify else None
    try:
        with atomic_dir(out_dir, "pruned", replaces=RUN_KINDS) as tmp:
            model.save_pretrained(tmp, max_shard_size=SHARD_SIZE)
            write_pruned_files(tmp, model, plan, manifest, tokenizer)
            if ref is not None:
                attn = getattr(model.config, "_attn_implementation", None)
                load = lambda device: load_pruned(tmp, dtype=param.dtype, attn=attn, device=device)  # noqa: E731
                verify_reload(load, model, ids, ref, files=RunFolder(tmp).weight_files)
    except OSError as e:  # unwritable or full disk: atomic_dir has removed its temporary folder
        raise LlmpruneError(f"cannot write {out_dir}: {e}; choose another output path") from e
    return Path(out_dir).expanduser().resolve()


def _read_weights(folder: RunFolder) -> dict[str, torch.Tensor]:
    from llmprune.models.safe import load_safetensors

    sd: dict[str, torch.Tensor] = {}
    for f in folder.weight_files():
        sd.update(load_safetensors(f, "the folder is damaged; write it again"))
    return sd


def load_pruned(
    path: str | Path, *, dtype: torch.dtype | None = None, attn: str | None = None, device: str | torch.device = "cpu"
) -> nn.Module:
    """Load a folder written by `save_pruned` (uniform or not) in eval mode.

    `dtype` defaults to the dtype stored in config.json; `attn` picks the attention implementation
    (eager, sdpa, ...); `device` is where the weights go.
    """
    from transformers import AutoConfig, GenerationConfig

    folder = RunFolder(path)
    path = folder.path
    manifest = folder.read_manifest()
    config = AutoConfig.from_pretrained(path)
    family_of(config)  # an unsupported architecture fails before anything is built
    if manifest.num_hidden_layers != config.num_hidden_layers or manifest.hidden_size != config.hidden_size:
        raise LlmpruneError(f"{path}: {MANIFEST} and config.json disagree on the shapes; the folder is damaged")
    dtype = dtype or config.dtype or torch.float32
    if isinstance(dtype, str):
        dtype = getattr(torch, dtype)
    model = build_model(
        config,
        manifest.shapes,
        _read_weights(folder),
        hidden=manifest.hidden_size,
        head_dim=manifest.head_dim,
        added_biases=manifest.added_biases,
        norm_eps=manifest.norm_eps,
        dtype=dtype,
        attn=attn,
        where=f"{path} ({MANIFEST})",
    )
    if (path / "generation_config.json").is_file():
        model.generation_config = GenerationConfig.from_pretrained(path)
    return model.to(device).eval()
