"""Streamed saving (offload): each pruned decoder layer goes to disk as soon as it is done.

`LayerSink` is a scratch folder next to the output: `write(prefix, module)` appends a finished layer's
tensors to one raw data file there (then the layer can go back to the meta device), `read_back_(model)`
puts them into the model again (when evaluation or training needs it whole). `save_streamed` then
writes what `save_pruned` writes — config, generation config, modeling file, plan, manifest, tokenizer
and weights files equal byte for byte to `save_pretrained`'s (the same shard split, the tensors ordered
and the header laid out as safetensors writes them) — from the non-layer tensors in memory and the
layers' bytes on disk, copied file to file. Its check reads every written tensor back one at a time and
compares it bit for bit with its source, so two whole models are never in memory.
"""

from __future__ import annotations

import json
import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from llmprune import tempfiles
from llmprune.errors import LlmpruneError
from llmprune.prune.plan import PrunePlan

# safetensors orders tensors by descending dtype (its enum order), then by name
DTYPES = {
    torch.bool: "BOOL",
    torch.uint8: "U8",
    torch.int8: "I8",
    torch.float8_e5m2: "F8_E5M2",
    torch.float8_e4m3fn: "F8_E4M3",
    torch.int16: "I16",
    torch.uint16: "U16",
    torch.float16: "F16",
    torch.bfloat16: "BF16",
    torch.int32: "I32",
    torch.uint32: "U32",
    torch.float32: "F32",
    torch.float64: "F64",
    torch.int64: "I64",
    torch.uint64: "U64",
}
RANK = {d: i for i, d in enumerate(DTYPES)}
WRITE_MAX = 1 << 30  # bytes per write(2) call (Linux writes at most about 2 GiB at once)


@dataclass(frozen=True)
class Chunk:
    """A tensor's bytes in the sink's data file."""

    offset: int
    nbytes: int
    dtype: torch.dtype
    shape: tuple[int, ...]


def _bytes(t: torch.Tensor) -> memoryview:
    return memoryview(t.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy())


def _write_all(fd: int, data: memoryview) -> None:
    while len(data):
        n = os.write(fd, data[:WRITE_MAX])
        data = data[n:]


def _read(path: Path, offset: int, dtype: torch.dtype, shape: tuple[int, ...]) -> torch.Tensor:
    t = torch.empty(shape, dtype=dtype)
    buf = _bytes(t) if t.numel() else memoryview(b"")
    with open(path, "rb", buffering=0) as f:
        f.seek(offset)
        got = 0
        while got < len(buf):
            n = f.readinto(buf[got:])
            if not n:
                raise LlmpruneError(f"{path} is shorter than its header says; the folder is damaged")
            got += n
    return t


class LayerSink:
    """Finished decoder layers, written to `<scratch>/layers.bin` as they come (see the module doc)."""

    def __init__(self, scratch: str | Path) -> None:
        self.scratch = Path(scratch)
        self.scratch.mkdir(parents=True, exist_ok=True)
        self.data = self.scratch / "layers.bin"
        self.chunks: dict[str, Chunk] = {}
        self._fd = os.open(self.data, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        self._end = 0

    @classmethod
    def beside(cls, out: str | Path) -> LayerSink:
        """A sink in a new hidden scratch folder next to `out` (same file system: the copy stays local)."""
        out = Path(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        return cls(tempfiles.new_dir(out))  # llmprune's temporary scheme: swept if the process is killed

    def write(self, prefix: str, module: nn.Module) -> None:
        """Append every tensor of `module`'s state dict, named `prefix` + its key."""
        for key, t in module.state_dict().items():
            data = _bytes(t)
            _write_all(self._fd, data)
            self.chunks[prefix + key] = Chunk(self._end, len(data), t.dtype, tuple(t.shape))
            self._end += len(data)

    def tensor(self, name: str) -> torch.Tensor:
        c = self.chunks[name]
        return _read(self.data, c.offset, c.dtype, c.shape)

    def read_back_(self, model: nn.Module, prefix: str = "", device: torch.device | str = "cpu") -> None:
        """Load every written tensor under `prefix` (e.g. "model.layers.3.") into `model` again, on `device`."""
        owners: dict[str, dict[str, torch.Tensor]] = {}
        for name in self.chunks:
            module, _, key = name.rpartition(".")
            if name.startswith(prefix):
                owners.setdefault(module, {})[key] = self.tensor(name).to(device)
        for module, tensors in owners.items():
            model.get_submodule(module).load_state_dict(tensors, strict=False, assign=True)

    def close(self) -> None:
        """Remove the scratch folder (the data is in the written output by now, or not wanted)."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        tempfiles.remove(Path(self.scratch))


def saved_tensors(model: nn.Module, sink: LayerSink) -> dict[str, tuple[torch.dtype, tuple[int, ...]]]:
    """{name: (dtype, shape)} that `save_pretrained` would write: the state dict, the tied lm_head left out;
    tensors still on the meta device must be in the sink."""
    from llmprune.arch import family_of

    tied = f"{family_of(model).lm_head}.weight" if getattr(model.config, "tie_word_embeddings", False) else None
    out = {}
    for name, t in model.state_dict().items():
        if name == tied:
            continue
        if t.device.type == "meta" and name not in sink.chunks:
            raise LlmpruneError(f"{name} was neither written nor loaded: the streamed save is incomplete")
        out[name] = (t.dtype, tuple(t.shape))
    return out


def shard_split(
    tensors: dict[str, tuple[torch.dtype, tuple[int, ...]]], max_shard_size: int | str | None = None
) -> dict[str, list[str]]:
    """{file name: tensor names}: the split `save_pretrained(..., max_shard_size=...)` makes (default: llmprune's
    `SHARD_SIZE`, as `save_pruned` writes)."""
    from huggingface_hub import split_torch_state_dict_into_shards

    from llmprune.runfolder import SHARD_SIZE

    size = SHARD_SIZE if max_shard_size is None else max_shard_size
    meta = {n: torch.empty(shape, dtype=dtype, device="meta") for n, (dtype, shape) in tensors.items()}
    split = split_torch_state_dict_into_shards(meta, filename_pattern="model{suffix}.safetensors", max_shard_size=size)
    return split.filename_to_tensors


def _header(names: list[str], tensors: dict) -> tuple[bytes, list[tuple[str, int]]]:
    """The safetensors header of `names` (sorted as safetensors sorts) and (name, nbytes) in file order."""
    order = sorted(names, key=lambda n: (-RANK[tensors[n][0]], n))
    head: dict[str, Any] = {"__metadata__": {"format": "pt"}}
    layout, offset = [], 0
    for n in order:
        dtype, shape = tensors[n]
        nbytes = torch.empty(shape, dtype=dtype, device="meta").nbytes
        head[n] = {"dtype": DTYPES[dtype], "shape": list(shape), "data_offsets": [offset, offset + nbytes]}
        layout.append((n, nbytes))
        offset += nbytes
    text = json.dumps(head, separators=(",", ":"), ensure_ascii=False).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text, layout


def _copy(src_fd: int, dst_fd: int, offset: int, count: int) -> None:
    """`count` bytes of src from `offset` to dst's position, in the kernel where it can."""
    while count:
        try:
            n = os.copy_file_range(src_fd, dst_fd, min(count, WRITE_MAX), offset)
        except OSError:  # no copy_file_range across these file systems: through a small buffer
            data = os.pread(src_fd, min(count, 64 << 20), offset)
            _write_all(dst_fd, memoryview(data))
            n = len(data)
        if n == 0:
            raise LlmpruneError("the layers' scratch file is shorter than what was written to it")
        offset += n
        count -= n


def write_weights(
    folder: str | Path, model: nn.Module, sink: LayerSink, max_shard_size: int | str | None = None
) -> dict[str, list[str]]:
    """Write the weights files of `model` (layers from `sink`, the rest from memory) into `folder`, as
    `save_pretrained(folder, max_shard_size=...)` does; returns {file: tensor names}."""
    folder = Path(folder)
    tensors = saved_tensors(model, sink)
    state = model.state_dict()
    files = shard_split(tensors, max_shard_size)
    src = os.open(sink.data, os.O_RDONLY)
    try:
        for file, names in files.items():
            head, layout = _header(names, tensors)
            fd = os.open(folder / file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
            try:
                _write_all(fd, memoryview(head))
                for name, _ in layout:
                    if name in sink.chunks:
                        _copy(src, fd, sink.chunks[name].offset, sink.chunks[name].nbytes)
                    else:
                        _write_all(fd, _bytes(state[name]))
            finally:
                os.close(fd)
    finally:
        os.close(src)
    if len(files) > 1:
        _write_index(folder, model, files, tensors)
    return files


def _write_index(folder: Path, model: nn.Module, files: dict[str, list[str]], tensors: dict) -> None:
    from transformers.utils import SAFE_WEIGHTS_INDEX_NAME

    from llmprune.models.params import count_params

    total = sum(torch.empty(s, dtype=d, device="meta").nbytes for d, s in tensors.values())
    index = {
        "metadata": {"total_parameters": count_params(model), "total_size": total},
        "weight_map": {n: f for f, names in files.items() for n in names},
    }
    (folder / SAFE_WEIGHTS_INDEX_NAME).write_text(json.dumps(index, indent=2, sort_keys=True) + "\n")


def verify_weights(folder: str | Path, model: nn.Module, sink: LayerSink, files: dict[str, list[str]]) -> None:
    """Read the written files back, one tensor at a time, and compare each with its source bit for bit
    (safetensors parses the headers; the data is read with plain reads, not mapped)."""
    from safetensors import safe_open

    folder = Path(folder)
    state = model.state_dict()
    for file, names in files.items():
        path = folder / file
        with safe_open(str(path), framework="pt", device="cpu") as f:
            if sorted(f.keys()) != sorted(names):
                raise LlmpruneError(f"{path} holds other tensors than were written; nothing was written")
        (size,) = struct.unpack("<Q", _pread(path, 0, 8))
        header = json.loads(_pread(path, 8, size))
        for name in names:
            entry = header[name]
            want = sink.tensor(name) if name in sink.chunks else state[name]
            got = _read(path, 8 + size + entry["data_offsets"][0], want.dtype, tuple(entry["shape"]))
            if got.shape != want.shape or not torch.equal(got, want.cpu()):
                raise LlmpruneError(
                    f"the written folder holds a different {name}; nothing was written. "
                    "This is a bug in llmprune: please report it"
                )


def _pread(path: Path, offset: int, count: int) -> bytes:
    fd = os.open(path, os.O_RDONLY)
    try:
        return os.pread(fd, count, offset)
    finally:
        os.close(fd)


def save_streamed(
    model: nn.Module,
    plan: PrunePlan,
    out_dir: str | Path,
    sink: LayerSink,
    *,
    tokenizer: Any = None,
    extra: dict | None = None,
) -> Path:
    """Write the pruned folder of a model whose decoder layers are in `sink` (on the meta device in
    `model`) into `out_dir`, an empty folder being assembled (`llmprune.fsutil.atomic_dir`'s): what
    `save_pruned` writes, checked tensor by tensor instead of by loading a second model."""
    from llmprune.surgery.io import build_manifest, write_pruned_files

    out = Path(out_dir)
    manifest = build_manifest(model, plan, extra)
    model.save_pretrained(out, state_dict={})  # config and generation config exactly as save_pretrained writes
    files = write_weights(out, model, sink)
    write_pruned_files(out, model, plan, manifest, tokenizer)
    verify_weights(out, model, sink, files)
    return out
