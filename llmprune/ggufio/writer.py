"""`export_gguf`: write a model (llmprune folder, Hugging Face folder, alias, GGUF) as a GGUF file for llama.cpp.

The file is written next to `out` under a temporary name and renamed into place; an existing `out` is
replaced only when llmprune wrote it (its `general.llmprune.format` key), never another file. Checks
that need no weights (outtype, output path, family) run before the model is loaded.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import gguf
import torch
from torch import nn

from llmprune import tempfiles
from llmprune.arch import Layout, describe, layer_norm_eps
from llmprune.errors import LlmpruneError
from llmprune.fsutil import check_writable_parent
from llmprune.ggufio.keys import CONFIG_KEY, FORMAT, FORMAT_KEY, MODEL_TYPE_KEY, VERSION_KEY, is_llmprune_gguf
from llmprune.ggufio.source import source_gguf
from llmprune.ggufio.target import Target, check_exportable, choose_target, rope_theta
from llmprune.ggufio.tensors import OUTTYPES, encode, permute_rows, tensor_names
from llmprune.ggufio.tokenizer import write_tokenizer
from llmprune.version import __version__


@dataclass(frozen=True)
class Exported:
    """What `export_gguf` wrote."""

    path: Path
    arch: str
    outtype: str
    tensors: int
    tokenizer: str  # where llama.cpp's tokenizer keys came from


def check_outtype(outtype: str) -> str:
    if outtype not in OUTTYPES:
        raise LlmpruneError(f"unknown --outtype {outtype!r}; choose one of {', '.join(OUTTYPES)}")
    return outtype


def check_gguf_output(out: str | Path) -> Path:
    """`out` may be written: a new path in a writable folder, or a GGUF file llmprune wrote."""
    path = Path(out).expanduser()
    if path.suffix != ".gguf":
        raise LlmpruneError(f"--out {path} must end in .gguf")
    path = check_writable_parent(path)
    tempfiles.sweep(path)
    if path.is_symlink() or (path.exists() and not path.is_file()):
        raise LlmpruneError(f"{path} exists and is not a regular file; choose another --out")
    if path.exists() and not is_llmprune_gguf(path):
        raise LlmpruneError(
            f"{path} exists and was not written by llmprune export; it is never replaced: remove it or choose another --out"
        )
    return path


def export_gguf(spec: str, out: str | Path, *, outtype: str = "f32") -> Exported:
    """Export MODEL (any llmprune MODEL spec) to the GGUF file `out` (see the module doc)."""
    from llmprune.models.load import check_family, load_model

    check_outtype(outtype)
    path = check_gguf_output(out)
    check_exportable(check_family(spec))  # before any weights are read
    model, tokenizer = load_model(spec, dtype="float32", device="cpu")
    return write_gguf(model, tokenizer, path, outtype=outtype, source=source_gguf(spec))


def write_gguf(
    model: nn.Module, tokenizer, out: Path, *, outtype: str, source: Path | None = None, verify: bool = True
) -> Exported:
    """Write an in-memory model and its tokenizer to `out` atomically (checks: `check_gguf_output`).

    With `verify` (default) the written file is loaded back with llmprune's reader before it is renamed
    into place; an f32 file must also give the model's probe logits (`verify_reload`). Else LlmpruneError
    and nothing is written."""
    layout = describe(model)
    norm_eps = _custom_norm_eps(model, layout)
    target = choose_target(layout, model.config, norm_eps)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = tempfiles.new_file(out)
    try:
        writer = gguf.GGUFWriter(tmp, target.arch)
        _write_metadata(writer, model, layout, target, outtype)
        where = write_tokenizer(writer, tokenizer, out, layout.vocab_size, source)
        count = _write_tensors(writer, model, layout, target, OUTTYPES[outtype][0])
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
        if verify:
            _verify(model, tmp, outtype)
        os.replace(tmp, out)
        tempfiles.release(tmp)
    except BaseException as e:
        tempfiles.remove(tmp)
        if isinstance(e, OSError):
            raise LlmpruneError(f"cannot write {out}: {e}; choose another output path") from e
        raise
    return Exported(out, target.arch, outtype, count, where)


def _verify(model: nn.Module, path: Path, outtype: str) -> None:
    from llmprune.ggufio.reader import load_llmprune_gguf
    from llmprune.models.reload import probe_ids, probe_logits, verify_reload

    def load(device: torch.device) -> nn.Module:
        return load_llmprune_gguf(path, dtype=torch.float32)[0].to(device)

    if outtype == "f32":
        ids = probe_ids(model.config.vocab_size, next(model.parameters()).device)
        verify_reload(load, model, ids, probe_logits(model, ids))
        return
    try:  # rounded weights: the file must load back; its logits differ by design
        load(torch.device("cpu"))
    except Exception as e:  # any failure to load back means the file must not be written
        raise LlmpruneError(
            f"the written GGUF file does not load back ({type(e).__name__}: {e}); nothing was written"
        ) from e


def _custom_norm_eps(model: nn.Module, layout: Layout) -> list[dict[str, float]]:
    fam = layout.family
    config_eps = float(getattr(model.config, fam.config_norm_eps))
    return [
        {p: eps for p, eps in layer_norm_eps(model, layout, i).items() if eps != config_eps}
        for i in range(layout.num_layers)
    ]


def _write_metadata(writer: gguf.GGUFWriter, model: nn.Module, layout: Layout, target: Target, outtype: str) -> None:
    config = model.config
    shapes = layout.layers
    one = layout.uniform
    writer.add_string(FORMAT_KEY, FORMAT)
    writer.add_string(MODEL_TYPE_KEY, str(layout.family))
    writer.add_string(VERSION_KEY, __version__)
    writer.add_name(str(getattr(config, "_name_or_path", "") or "llmprune model").rstrip("/").rsplit("/", 1)[-1])
    writer.add_file_type(OUTTYPES[outtype][1])
    if outtype == "q8_0":
        writer.add_quantization_version(gguf.GGML_QUANT_VERSION)
    writer.add_vocab_size(layout.vocab_size)
    writer.add_context_length(int(config.max_position_embeddings))
    writer.add_embedding_length(layout.hidden_size)
    writer.add_block_count(layout.num_layers)
    if target.per_layer:
        writer.add_head_count([s.heads for s in shapes])
        writer.add_head_count_kv([s.kv_heads for s in shapes])
        writer.add_feed_forward_length([s.intermediate for s in shapes])
    else:
        writer.add_head_count(one.heads)
        writer.add_head_count_kv(one.kv_heads)
        writer.add_feed_forward_length(one.intermediate)
    writer.add_key_length(layout.head_dim)
    writer.add_value_length(layout.head_dim)
    writer.add_rope_dimension_count(layout.head_dim)
    writer.add_rope_freq_base(rope_theta(config))
    writer.add_layer_norm_rms_eps(float(getattr(config, layout.family.config_norm_eps)))
    writer.add_string(CONFIG_KEY, config.to_json_string(use_diff=False))


def _write_tensors(writer: gguf.GGUFWriter, model: nn.Module, layout: Layout, target: Target, qtype) -> int:
    params = dict(model.named_parameters(remove_duplicate=False))
    count = 0
    for base, module in tensor_names(layout.family, layout.num_layers, layout.tied).items():
        for kind in ("weight", "bias"):
            t = params.get(f"{module}.{kind}")
            if t is None:
                continue
            t = _gguf_order(t, base, layout, target)
            data, dtype = encode(t, qtype)
            raw = dtype if dtype not in (gguf.GGMLQuantizationType.F32, gguf.GGMLQuantizationType.F16) else None
            writer.add_tensor(f"{base}.{kind}", data, raw_dtype=raw)
            count += 1
    return count


def _gguf_order(t: torch.Tensor, base: str, layout: Layout, target: Target) -> torch.Tensor:
    """q/k rows in llama.cpp's interleaved rotary order where the target needs it."""
    if not target.permute_qk or not base.startswith("blk."):
        return t
    _, i, name = base.split(".")
    shape = layout.layers[int(i)]
    if name == "attn_q":
        return permute_rows(t, shape.heads)
    if name == "attn_k":
        return permute_rows(t, shape.kv_heads)
    return t
