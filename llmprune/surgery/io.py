"""Save and load pruned models: safetensors + config.json + plan.json + llmprune.json.

A folder written by `save_pruned` holds
- `model.safetensors` (or shards + index) and `config.json`, `generation_config.json`, written by
  transformers' `save_pretrained` (safetensors only; a tied lm_head is stored once);
- `plan.json`: the `PrunePlan` that produced the model (indices refer to the original model);
- `llmprune.json`: the manifest: format/version, base model, hidden size, head_dim, the widths of
  every remaining layer (`num_attention_heads`, `num_key_value_heads`, `intermediate_size`, and the
  original index of the layer), `uniform`, `stock_loadable`, parameter count and caller's `extra`;
- the tokenizer files when a tokenizer is given.

`stock_loadable: true` (uniform widths that the config class accepts, see `llmprune.surgery.shapes`)
means `config.json` states the true shapes and stock `AutoModelForCausalLM.from_pretrained` loads
the folder. Otherwise `config.json` is a valid skeleton (stock loading fails with a size mismatch)
and the folder loads with `load_pruned` (and so every llmprune command): it builds the stock
architecture from `config.json` on the meta device, resizes every layer to the manifest's widths,
and loads the weights strictly. Such folders also carry `modeling_llmprune.py` + `auto_map`, so
`AutoModelForCausalLM.from_pretrained(path, trust_remote_code=True)` loads them too (remote_code.py).

`save_pruned` writes into a temporary folder, loads it back with `load_pruned` and compares logits on a
fixed input with the in-memory model; only then is the folder renamed into place. A folder that
cannot be loaded back is never written.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from llmprune import __version__
from llmprune.errors import LlmpruneError
from llmprune.fsutil import atomic_dir
from llmprune.plan import PrunePlan
from llmprune.surgery import arch
from llmprune.surgery.arch import LayerWidths
from llmprune.surgery.attention import set_head_counts
from llmprune.surgery.remote_code import write_remote_code
from llmprune.surgery.shapes import sync_config_

MANIFEST = "llmprune.json"
FORMAT = "llmprune-pruned"
MANIFEST_VERSION = 1
PLAN_FILE = "plan.json"


def expected_widths(plan: PrunePlan) -> tuple[int, list[int], list[LayerWidths]]:
    """(hidden size, kept original layer indices, widths per kept layer) that `plan` produces."""
    b = plan.base
    kept, widths = [], []
    for i in range(b.num_layers):
        lp = plan.layer(i)
        if lp.drop:
            continue
        kept.append(i)
        widths.append(
            LayerWidths(
                b.num_heads - len(lp.heads),
                b.num_kv_heads - len(lp.kv_heads),
                b.intermediate_size - len(lp.mlp_channels),
            )
        )
    return b.hidden_size - len(plan.hidden_channels), kept, widths


def build_manifest(model: nn.Module, plan: PrunePlan, extra: dict | None = None) -> dict[str, Any]:
    """The manifest of a model pruned by `plan`; raises if the model's shapes are not what the plan makes."""
    from llmprune.models.params import count_params

    arch.check_supported(model)
    plan.validate()
    hidden, kept, widths = expected_widths(plan)
    actual = arch.all_widths(model)
    if (arch.hidden_size(model), actual) != (hidden, widths) or arch.head_dim(model) != plan.base.head_dim:
        raise LlmpruneError(
            "the model's shapes are not those the plan produces; call prune_(model, plan) on the original model "
            "before save_pruned, and pass the same plan"
        )
    check = sync_config_(model)
    return {
        "format": FORMAT,
        "version": MANIFEST_VERSION,
        "llmprune_version": __version__,
        "base_model": plan.meta.get("model") or getattr(model.config, "_name_or_path", "") or "",
        "model_type": model.config.model_type,
        "hidden_size": hidden,
        "head_dim": plan.base.head_dim,
        "num_hidden_layers": len(widths),
        "uniform": check.uniform,
        "stock_loadable": check.ok,
        "stock_reason": check.reason,
        "params": count_params(model),
        "layers": [{**w.to_dict(), "original_layer": i} for i, w in zip(kept, widths, strict=True)],
        "extra": dict(extra or {}),
    }


def probe_ids(vocab: int, device: torch.device) -> torch.Tensor:
    """The fixed (1, 24) token ids every written folder is checked with after loading it back."""
    return ((torch.arange(24, dtype=torch.long) * 7919 + 13) % vocab).unsqueeze(0).to(device)


@torch.no_grad()
def probe_logits(model: nn.Module, ids: torch.Tensor) -> torch.Tensor:
    """fp32 logits of `model` on `ids` in eval mode (the training flag is restored)."""
    training = model.training
    model.eval()
    try:
        return model(ids).logits.float()
    finally:
        model.train(training)


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
        with atomic_dir(out_dir, replaces=(MANIFEST,)) as tmp:
            model.save_pretrained(tmp)
            if not manifest["stock_loadable"]:
                write_remote_code(tmp, manifest["model_type"], manifest["layers"])
            (tmp / PLAN_FILE).write_text(plan.to_json() + "\n")
            (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")
            if tokenizer is not None:
                tokenizer.save_pretrained(tmp)
            if ref is not None:
                attn = getattr(model.config, "_attn_implementation", None)
                load = lambda device: load_pruned(tmp, dtype=param.dtype, attn=attn, device=device)  # noqa: E731
                verify_reload(load, model, ids, ref)
    except OSError as e:  # unwritable or full disk: atomic_dir has removed its temporary folder
        raise LlmpruneError(f"cannot write {out_dir}: {e}; choose another output path") from e
    return Path(out_dir).expanduser().resolve()


RELOAD_MARGIN = 512 * 2**20  # bytes kept free beyond a second copy's weights when reloading on the GPU


def model_bytes(model: nn.Module) -> int:
    unique = {t.data_ptr(): t for t in model.state_dict().values()}  # tied weights once
    return sum(t.numel() * t.element_size() for t in unique.values())


def reload_fits(free: int, weights: int) -> bool:
    """Is there room for a second copy of `weights` bytes (and its probe) in `free` bytes?"""
    return free >= weights * 1.05 + RELOAD_MARGIN


def reload_plan(model: nn.Module) -> tuple[torch.device, str]:
    """How a just-written folder is checked: loaded on the model's device when a second copy fits there
    ("logits": the probe logits are compared), else on the CPU ("weights": every tensor, bit for bit)."""
    device = next(model.parameters()).device
    if device.type == "cuda" and not reload_fits(torch.cuda.mem_get_info(device)[0], model_bytes(model)):
        return torch.device("cpu"), "weights"
    return device, "logits"


def verify_reload(
    load: Callable[[torch.device], nn.Module], model: nn.Module, ids: torch.Tensor, ref: torch.Tensor
) -> None:
    """Load a just-written folder with `load(device)` and check it against the in-memory `model`.

    Where `reload_plan` says: on the model's device its `probe_logits` on `ids` must equal `ref` (the
    model's) to 1e-4 relative in fp32, 2e-2 in half precision; on the CPU (no room on the GPU for a second
    copy) every tensor must equal the model's bit for bit. Else LlmpruneError: the caller writes nothing.
    """
    device, by = reload_plan(model)
    try:
        reloaded = load(device)
        got = probe_logits(reloaded, ids) if by == "logits" else None
    except torch.OutOfMemoryError as e:
        raise LlmpruneError(
            "out of memory loading the written folder back to check it (a second copy of the model); free "
            "memory, or from Python save with verify=False; nothing was written"
        ) from e
    except Exception as e:  # any failure to load back means the folder must not be written
        raise LlmpruneError(
            f"the written folder does not load back ({type(e).__name__}: {e}); nothing was written"
        ) from e
    if got is None:
        _same_weights(reloaded, model)
        return
    del reloaded
    dtype = next(model.parameters()).dtype
    tol = 1e-4 if dtype == torch.float32 else 2e-2
    err = (got - ref).abs().max().item()
    if not err <= tol * max(1.0, ref.abs().max().item()):
        raise LlmpruneError(
            f"the written folder loads back with different logits (max |diff| {err:.3g}); nothing was written. "
            "This is a bug in llmprune: please report it"
        )


def _same_weights(reloaded: nn.Module, model: nn.Module) -> None:
    got, want = reloaded.state_dict(), model.state_dict()
    if got.keys() != want.keys():
        diff = sorted(got.keys() ^ want.keys())
        raise LlmpruneError(
            f"the written folder loads back with other tensors ({', '.join(diff[:3])}); nothing was written. "
            "This is a bug in llmprune: please report it"
        )
    for name, tensor in want.items():  # one tensor at a time onto the CPU
        if got[name].dtype != tensor.dtype or not torch.equal(got[name], tensor.to(got[name].device)):
            raise LlmpruneError(
                f"the written folder loads back with a different {name}; nothing was written. "
                "This is a bug in llmprune: please report it"
            )


def read_manifest(path: str | Path) -> dict[str, Any]:
    path = Path(path).expanduser()
    file = path / MANIFEST
    if not file.is_file():
        raise LlmpruneError(
            f"{path} has no {MANIFEST}: it was not written by llmprune; load it with AutoModelForCausalLM.from_pretrained"
        )
    try:
        manifest = json.loads(file.read_text())
    except json.JSONDecodeError as e:
        raise LlmpruneError(f"{file} is not valid JSON ({e}); the folder is damaged, write it again") from e
    if not isinstance(manifest, dict):
        raise LlmpruneError(f"{file} holds a {type(manifest).__name__}, not a manifest; the folder is damaged")
    if manifest.get("format") != FORMAT:
        raise LlmpruneError(f"{file} has format {manifest.get('format')!r}, expected {FORMAT!r}")
    if manifest.get("version", 0) > MANIFEST_VERSION:
        raise LlmpruneError(
            f"{file} has version {manifest['version']}, newer than this llmprune reads ({MANIFEST_VERSION}); upgrade llmprune"
        )
    return manifest


def _read_weights(path: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    index = path / "model.safetensors.index.json"
    if index.is_file():
        try:
            files = sorted(set(json.loads(index.read_text())["weight_map"].values()))
        except (json.JSONDecodeError, KeyError, TypeError, AttributeError) as e:
            raise LlmpruneError(f"{index} is not a safetensors index ({e!r}); the folder is damaged") from e
    elif (path / "model.safetensors").is_file():
        files = ["model.safetensors"]
    else:
        raise LlmpruneError(f"{path} holds no model.safetensors; llmprune only loads safetensors weights")
    sd: dict[str, torch.Tensor] = {}
    for f in files:
        try:
            sd.update(load_file(str(path / f), device="cpu"))
        except Exception as e:  # safetensors raises its own SafetensorError (truncated, bad header) or OSError
            raise LlmpruneError(f"{path / f} cannot be read ({type(e).__name__}: {e}); the folder is damaged") from e
    return sd


def load_pruned(
    path: str | Path, *, dtype: torch.dtype | None = None, attn: str | None = None, device: str | torch.device = "cpu"
) -> nn.Module:
    """Load a folder written by `save_pruned` (uniform or not) in eval mode.

    `dtype` defaults to the dtype stored in config.json; `attn` picks the attention implementation
    (eager, sdpa, ...); `device` is where the weights go.
    """
    from transformers import AutoConfig, AutoModelForCausalLM, GenerationConfig

    path = Path(path).expanduser()
    manifest = read_manifest(path)
    config = AutoConfig.from_pretrained(path)
    try:
        layers = manifest["layers"]
        widths = [
            LayerWidths(w["num_attention_heads"], w["num_key_value_heads"], w["intermediate_size"]) for w in layers
        ]
        agree = len(layers) == config.num_hidden_layers and manifest["hidden_size"] == config.hidden_size
    except (KeyError, TypeError) as e:
        raise LlmpruneError(f"{path}: {MANIFEST} lacks the layer widths ({e!r}); the folder is damaged") from e
    if not agree:
        raise LlmpruneError(f"{path}: {MANIFEST} and config.json disagree on the shapes; the folder is damaged")
    dtype = dtype or config.dtype or torch.float32
    if isinstance(dtype, str):
        dtype = getattr(torch, dtype)
    kwargs = {"dtype": dtype}
    if attn:
        kwargs["attn_implementation"] = attn
    if hasattr(config, "auto_map"):  # only for trust_remote_code loaders; this model is the stock class
        del config.auto_map
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config, trust_remote_code=False, **kwargs)
    arch.check_supported(model)
    for layer, w in zip(arch.layers(model), widths, strict=True):
        _resize_layer_(layer, w)
    sd = {k: v.to(dtype) if v.is_floating_point() else v for k, v in _read_weights(path).items()}
    try:
        missing, unexpected = model.load_state_dict(sd, strict=False, assign=True)
    except RuntimeError as e:
        raise LlmpruneError(f"{path}: weights do not match {MANIFEST} ({str(e).splitlines()[-1].strip()})") from e
    tied = bool(getattr(config, "tie_word_embeddings", False))
    allowed = {"lm_head.weight"} if tied else set()
    if set(missing) - allowed or unexpected:
        raise LlmpruneError(
            f"{path}: weights and {MANIFEST} disagree (missing {sorted(set(missing) - allowed)[:5]}, "
            f"unexpected {sorted(unexpected)[:5]}); the folder is damaged, write it again"
        )
    if tied:
        model.lm_head.weight = model.model.embed_tokens.weight
    rotary = model.model.rotary_emb
    model.model.rotary_emb = type(rotary)(config=model.config)
    on_meta = [n for n, t in [*model.named_parameters(), *model.named_buffers()] if t.device.type == "meta"]
    if on_meta:
        raise LlmpruneError(f"{path}: tensors {on_meta[:5]} were not loaded; the folder is damaged, write it again")
    if (path / "generation_config.json").is_file():
        model.generation_config = GenerationConfig.from_pretrained(path)
    return model.to(device).eval()


def _resize_layer_(layer: nn.Module, w: LayerWidths) -> None:
    """Give a freshly built (meta) layer the widths `w`: new empty projections of the right shapes."""
    attn, mlp = layer.self_attn, layer.mlp
    hd = attn.head_dim
    shapes = {
        (attn, "q_proj"): (None, w.num_attention_heads * hd),
        (attn, "k_proj"): (None, w.num_key_value_heads * hd),
        (attn, "v_proj"): (None, w.num_key_value_heads * hd),
        (attn, "o_proj"): (w.num_attention_heads * hd, None),
        (mlp, "gate_proj"): (None, w.intermediate_size),
        (mlp, "up_proj"): (None, w.intermediate_size),
        (mlp, "down_proj"): (w.intermediate_size, None),
    }
    for (mod, name), (n_in, n_out) in shapes.items():
        old = getattr(mod, name)
        new = nn.Linear(
            n_in or old.in_features,
            n_out or old.out_features,
            bias=old.bias is not None,
            device="meta",
            dtype=old.weight.dtype,
        )
        setattr(mod, name, new)
    set_head_counts(attn, w.num_attention_heads, w.num_key_value_heads)
    if hasattr(mlp, "intermediate_size"):
        mlp.intermediate_size = w.intermediate_size
