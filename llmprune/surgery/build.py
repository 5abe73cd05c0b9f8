"""Build a model of per-layer widths from a config and a state dict: what every llmprune loader shares.

`build_model` makes the family's stock architecture from `config` on the meta device, gives every layer
its own widths (`resize_layer_`), loads the weights strictly and finishes what the meta device leaves
undone (tied head, embedding scale, rotary buffers). `load_pruned` (a pruned folder) and the GGUF loader
(`llmprune.ggufio.reader`) both call it, so a non-uniform GGUF becomes the same kind of model.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from llmprune.arch import Family, LayerShape, family_of, module_shapes, set_embed_scale_, set_layer_shape_
from llmprune.errors import LlmpruneError


def build_model(
    config,
    shapes: Sequence[LayerShape],
    sd: dict[str, torch.Tensor],
    *,
    hidden: int,
    head_dim: int,
    added_biases: Sequence[str] = (),
    norm_eps: Sequence[dict[str, float]] = (),
    dtype: torch.dtype = torch.float32,
    attn: str | None = None,
    where: str = "the model",
) -> nn.Module:
    """The `config` model with layer i of widths `shapes[i]` (and the norm eps `norm_eps[i]`, by path),
    weights `sd` (cast to `dtype`), in eval mode on the CPU. `where` names the source in errors."""
    from transformers import AutoModelForCausalLM

    fam = family_of(config)
    kwargs = {"dtype": dtype}
    if attn:
        kwargs["attn_implementation"] = attn
    if hasattr(config, "auto_map"):  # only for trust_remote_code loaders; this model is the stock class
        del config.auto_map
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config, trust_remote_code=False, **kwargs)
    for i, shape in enumerate(shapes):
        module = model.get_submodule(f"{fam.layers}.{i}")
        resize_layer_(module, fam, shape, hidden, head_dim, added_biases)
        for norm, eps in (norm_eps[i] if i < len(norm_eps) else {}).items():
            setattr(module.get_submodule(norm), fam.norm_eps, eps)
    sd = {k: v.to(dtype) if v.is_floating_point() else v for k, v in sd.items()}
    try:
        missing, unexpected = model.load_state_dict(sd, strict=False, assign=True)
    except RuntimeError as e:
        raise LlmpruneError(f"{where}: weights do not match the widths ({str(e).splitlines()[-1].strip()})") from e
    tied = bool(getattr(config, "tie_word_embeddings", False))
    allowed = {f"{fam.lm_head}.weight"} if tied else set()
    if set(missing) - allowed or unexpected:
        raise LlmpruneError(
            f"{where}: weights and widths disagree (missing {sorted(set(missing) - allowed)[:5]}, "
            f"unexpected {sorted(unexpected)[:5]}); it is damaged, write it again"
        )
    if tied:
        model.get_submodule(fam.lm_head).weight = model.get_submodule(fam.embed).weight
    if fam.scaled_embedding:  # its sqrt(hidden) factor is a non-persistent buffer, still on the meta device
        set_embed_scale_(model.get_submodule(fam.embed), fam, hidden)
    parent, _, attr = fam.rotary_emb.rpartition(".")
    rotary = model.get_submodule(fam.rotary_emb)
    setattr(model.get_submodule(parent), attr, type(rotary)(config=model.config))
    on_meta = [n for n, t in [*model.named_parameters(), *model.named_buffers()] if t.device.type == "meta"]
    if on_meta:
        raise LlmpruneError(f"{where}: tensors {on_meta[:5]} were not loaded; it is damaged, write it again")
    return model.eval()


def resize_layer_(
    layer: nn.Module, family: Family, shape: LayerShape, hidden: int, head_dim: int, biases: Sequence[str] = ()
) -> None:
    """Give a freshly built (meta) layer the widths `shape`: new empty Linears (and projection norms) of
    the right shapes (`llmprune.arch.module_shapes`), with a bias also on the writer roles `biases`."""
    with_bias = {family.proj_path(r) for r in biases}
    for path, dims in module_shapes(family, shape, hidden, head_dim).items():
        owner, _, attr = path.rpartition(".")
        mod = layer.get_submodule(owner)
        old = getattr(mod, attr)
        if isinstance(old, nn.Linear):
            n_out, n_in = dims
            bias = old.bias is not None or path in with_bias
            new = nn.Linear(n_in, n_out, bias=bias, device="meta", dtype=old.weight.dtype)
            setattr(mod, attr, new)
        else:  # a norm over a projection's rows
            old.weight = nn.Parameter(torch.empty(dims, device="meta", dtype=old.weight.dtype))
    set_layer_shape_(layer, family, shape)
