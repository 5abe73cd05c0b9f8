"""A model whose decoder layers are read from its safetensors files one at a time (`--offload`).

`load_offloaded(spec)` builds the model on the meta device and reads only what is not a decoder layer
(embeddings, final norm, lm_head) plus the tokenizer; `LayerLoader.load(i)` reads layer i's tensors
(from the files, to `device`), `release(i)` returns them to the meta device (and the memory to the
system: `llmprune.models.malloc`). The sequential engine writes each layer out pruned when it is done
(`llmprune.surgery.stream.LayerSink`) and releases it, so it holds the non-layer weights and the current
layer: never a second full copy, and never the whole model, dense or pruned. Only safetensors folders
(an alias's converted folder, a local folder, a cached hub model).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from llmprune.errors import LlmpruneError
from llmprune.runfolder import RunFolder


@dataclass
class LayerLoader:
    """Reads decoder layers of `model` from the safetensors files of `folder` on demand."""

    model: nn.Module
    folder: Path
    dtype: torch.dtype
    device: torch.device
    prefix: str  # the layers' module path, e.g. "model.layers"
    files: dict[str, Path] = field(default_factory=dict)  # tensor name -> file
    loaded: set[int] = field(default_factory=set)

    def _tensors(self, names: list[str]) -> dict[str, torch.Tensor]:
        from safetensors import safe_open

        out: dict[str, torch.Tensor] = {}
        by_file: dict[Path, list[str]] = {}
        for n in names:
            by_file.setdefault(self.files[n], []).append(n)
        for file, group in by_file.items():
            with safe_open(str(file), framework="pt", device="cpu") as f:
                for n in group:
                    out[n] = f.get_tensor(n).to(self.dtype).to(self.device)
        return out

    def load(self, i: int) -> None:
        """Read layer i's weights (a no-op when they are in memory)."""
        if i in self.loaded:
            return
        name = f"{self.prefix}.{i}."
        layer = self.model.get_submodule(f"{self.prefix}.{i}")
        tensors = self._tensors([n for n in self.files if n.startswith(name)])
        layer.load_state_dict({k[len(name) :]: v for k, v in tensors.items()}, strict=True, assign=True)
        self.loaded.add(i)

    def release(self, i: int) -> None:
        """Put layer i back on the meta device (its memory is freed and returned to the system)."""
        from llmprune.models.malloc import trim

        layer = self.model.get_submodule(f"{self.prefix}.{i}")
        layer.to_empty(device="meta")
        self.loaded.discard(i)
        trim()


def load_offloaded(spec: str, *, dtype: torch.dtype, device: torch.device, attn: str | None = None):
    """(model with only its non-layer weights read, tokenizer, LayerLoader) for MODEL `spec`."""
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    from llmprune.arch import family_of
    from llmprune.models.aliases import ensure_alias
    from llmprune.models.load import resolve_model_source
    from llmprune.models.malloc import return_memory_to_os

    return_memory_to_os()  # freed layers leave the process (glibc would keep them in its arenas)
    kind, loc = resolve_model_source(spec)
    if kind == "alias":
        loc = str(ensure_alias(loc))
    elif kind == "hub":
        from llmprune.perf.footprint import weights_files

        loc = str(weights_files(spec)[0].parent)
    elif kind != "hf_dir":
        raise LlmpruneError(
            f"--offload reads layers from a safetensors folder; {spec!r} is a {kind} model: convert or save it "
            "as a Hugging Face folder first, or prune without --offload"
        )
    folder = RunFolder(loc)
    config = AutoConfig.from_pretrained(folder.path)
    fam = family_of(config)
    kwargs = {"dtype": dtype} | ({"attn_implementation": attn} if attn else {})
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config, **kwargs)
    files: dict[str, Path] = {}
    for file in folder.weight_files():
        from safetensors import safe_open

        with safe_open(str(file), framework="pt", device="cpu") as f:
            files.update(dict.fromkeys(f.keys(), file))
    loader = LayerLoader(model, folder.path, dtype, device, fam.layers, files)
    rest = [n for n in files if not n.startswith(fam.layers + ".")]
    missing, unexpected = model.load_state_dict(loader._tensors(rest), strict=False, assign=True)
    tied = bool(getattr(config, "tie_word_embeddings", False))
    if tied:
        model.get_submodule(fam.lm_head).weight = model.get_submodule(fam.embed).weight
    absent = [n for n in missing if not n.startswith(fam.layers + ".") and not (tied and n == f"{fam.lm_head}.weight")]
    if absent or unexpected:
        raise LlmpruneError(
            f"{folder.path}: weights do not match the config (missing {absent[:3]}, unexpected {unexpected[:3]})"
        )
    parent, _, attr = fam.rotary_emb.rpartition(".")
    rotary = model.get_submodule(fam.rotary_emb)
    setattr(model.get_submodule(parent), attr, type(rotary)(config=model.config).to(device))
    if fam.scaled_embedding:
        from llmprune.arch import set_embed_scale_

        set_embed_scale_(model.get_submodule(fam.embed), fam, config.hidden_size)
    model.eval()
    model.config.name_or_path = loc  # as from_pretrained(loc) sets it: plans record the same model
    return model, AutoTokenizer.from_pretrained(folder.path), loader
