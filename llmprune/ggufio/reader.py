"""`load_llmprune_gguf`: read a GGUF file written by `llmprune export` back into a transformers model.

The Hugging Face config travels in the file (`llmprune.config`); the widths come from the GGUF keys
(per-layer arrays for `deci`), the weights from the tensors (de-quantized, q/k rows put back in Hugging
Face order). The model is built by `llmprune.surgery.build.build_model`, so a non-uniform GGUF becomes
the same kind of model `load_pruned` returns. Other GGUF files load through transformers
(`llmprune.models.gguf_convert`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import gguf
import torch
from torch import nn

from llmprune.arch import WRITERS, Family, LayerShape, family_for
from llmprune.errors import LlmpruneError
from llmprune.ggufio.keys import CONFIG_KEY, MODEL_TYPE_KEY, is_llmprune_gguf
from llmprune.ggufio.target import PERMUTED_ARCHS
from llmprune.ggufio.tensors import decode, tensor_names, unpermute_rows
from llmprune.ggufio.tokenizer import read_tokenizer
from llmprune.surgery.build import build_model


def _per_layer(fields: dict[str, Any], key: str, n: int, path: Path) -> list[int]:
    value = fields.get(key)
    if value is None:
        raise LlmpruneError(f"{path} lacks {key}; the file is damaged")
    values = [int(v) for v in value] if isinstance(value, list) else [int(value)] * n
    if len(values) != n:
        raise LlmpruneError(f"{path}: {key} has {len(values)} entries for {n} layers; the file is damaged")
    return values


def _shapes(fields: dict[str, Any], arch: str, path: Path) -> list[LayerShape]:
    n = int(fields[f"{arch}.block_count"])
    heads = _per_layer(fields, f"{arch}.attention.head_count", n, path)
    kv = _per_layer(fields, f"{arch}.attention.head_count_kv", n, path)
    ff = _per_layer(fields, f"{arch}.feed_forward_length", n, path)
    return [LayerShape(h, k, f) for h, k, f in zip(heads, kv, ff, strict=True)]


def _state_dict(reader: gguf.GGUFReader, fam: Family, shapes: list[LayerShape], arch: str, path: Path) -> dict:
    names = {t.name for t in reader.tensors}
    tied = "output.weight" not in names
    modules = tensor_names(fam, len(shapes), tied)
    sd: dict[str, torch.Tensor] = {}
    for t in reader.tensors:
        base, _, kind = t.name.rpartition(".")
        if base not in modules:
            raise LlmpruneError(f"{path}: unexpected tensor {t.name}; the file was not written by llmprune export")
        w = decode(t.data, t.tensor_type).reshape(tuple(int(d) for d in reversed(t.shape.tolist())))
        if arch in PERMUTED_ARCHS and base.startswith("blk.") and base.endswith(("attn_q", "attn_k")):
            shape = shapes[int(base.split(".")[1])]
            w = unpermute_rows(w, shape.heads if base.endswith("attn_q") else shape.kv_heads)
        sd[f"{modules[base]}.{kind}"] = w
    return sd


def load_llmprune_gguf(
    path: str | Path, *, dtype: torch.dtype = torch.float32, attn: str | None = None
) -> tuple[nn.Module, Any]:
    """The model and tokenizer of a GGUF file `llmprune export` wrote, in eval mode on the CPU."""
    from transformers import AutoTokenizer

    path = Path(path)
    if not is_llmprune_gguf(path):
        raise LlmpruneError(f"{path} was not written by llmprune export; load it as a plain .gguf model")
    try:
        reader = gguf.GGUFReader(path)
    except (ValueError, OSError) as e:
        raise LlmpruneError(f"{path} is not a readable GGUF file ({e}); the file is damaged") from e
    fields = {name: field.contents() for name, field in reader.fields.items()}
    arch = fields["general.architecture"]
    try:
        data = json.loads(fields[CONFIG_KEY])
    except (KeyError, json.JSONDecodeError) as e:
        raise LlmpruneError(f"{path} lacks a readable {CONFIG_KEY}; the file is damaged") from e
    fam = family_for(fields.get(MODEL_TYPE_KEY))
    shapes = _shapes(fields, arch, path)
    sd = _state_dict(reader, fam, shapes, arch, path)
    config = fam.config_class().from_dict(data)
    config.num_hidden_layers = len(shapes)
    config.hidden_size = int(fields[f"{arch}.embedding_length"])
    config.head_dim = int(fields[f"{arch}.attention.key_length"])
    config.tie_word_embeddings = "output.weight" not in {t.name for t in reader.tensors}
    setattr(config, fam.config_norm_eps, float(fields[f"{arch}.attention.layer_norm_rms_epsilon"]))
    layer0 = f"{fam.layers}.0."
    added = [r for r in WRITERS if f"{layer0}{fam.proj_path(r)}.bias" in sd and not fam.bias(config, r)]
    model = build_model(
        config,
        shapes,
        sd,
        hidden=config.hidden_size,
        head_dim=config.head_dim,
        added_biases=added,
        dtype=dtype,
        attn=attn,
        where=str(path),
    )
    model.config.name_or_path = str(path)
    tok = read_tokenizer(fields)
    if tok is None:
        tok = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
    return model, tok
