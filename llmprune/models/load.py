"""One model loader used by every command.

MODEL may be a built-in alias (`smollm2-135m`), a `.gguf` file, a folder saved by llmprune
(it holds `llmprune.json`), a local Hugging Face folder, or a Hugging Face Hub id.
Only safetensors weights are ever loaded.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from llmprune.errors import LlmpruneError
from llmprune.models.aliases import ensure_alias, is_alias
from llmprune.models.options import DTYPE_NAMES, check_device
from llmprune.runfolder import RunFolder

_DTYPES = {
    "float32": torch.float32,
    "fp32": torch.float32,
    "bfloat16": torch.bfloat16,
    "bf16": torch.bfloat16,
    "float16": torch.float16,
    "fp16": torch.float16,
}


def resolve_device(device: str = "auto") -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(check_device(device))
    except (RuntimeError, ValueError) as e:
        raise LlmpruneError(f"invalid device {device!r}; use auto, cpu, cuda or cuda:N") from e
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise LlmpruneError(f"device {device!r} requested but CUDA is not available; use --device cpu")
    return dev


def resolve_dtype(
    dtype: str | torch.dtype = "auto", device: torch.device | None = None, stored: torch.dtype | None = None
) -> torch.dtype:
    """`auto` means bf16 on GPU; on CPU fp32, or bf16 when the checkpoint is stored in bf16 (`stored`): a
    bf16 7B model then takes 13.5 GB instead of 27."""
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype == "auto":
        dev = device or resolve_device("auto")
        return torch.bfloat16 if dev.type == "cuda" or stored == torch.bfloat16 else torch.float32
    if dtype not in _DTYPES:
        raise LlmpruneError(f"unknown dtype {dtype!r}; choose one of {', '.join(DTYPE_NAMES)}")
    return _DTYPES[dtype]


def _looks_like_path(spec: str) -> bool:
    return spec.startswith((".", "/", "~")) or spec.endswith(".gguf") or spec.count("/") > 1


def resolve_model_source(spec: str) -> tuple[str, str]:
    """Classify MODEL: returns (kind, location) with kind in alias|gguf|llmprune|hf_dir|hub."""
    if not spec or not spec.strip():
        raise LlmpruneError("MODEL is empty; pass a hub id, a local folder, a .gguf file or smollm2-135m")
    if is_alias(spec):
        return "alias", spec
    path = Path(spec).expanduser()
    if path.exists():
        if path.is_file():
            if path.suffix == ".gguf":
                return "gguf", str(path)
            raise LlmpruneError(f"{path} is a file but not a .gguf; pass a model folder or a .gguf file")
        if RunFolder(path).is_pruned:
            return "llmprune", str(path)
        if (path / "config.json").is_file():
            return "hf_dir", str(path)
        raise LlmpruneError(f"{path} is a folder without config.json; it is not a Hugging Face model folder")
    if _looks_like_path(spec):
        raise LlmpruneError(
            f"model path not found: {spec}; check the path, or use a hub id like org/name or the alias smollm2-135m"
        )
    if "/" not in spec:
        from llmprune.models.aliases import ALIASES

        raise LlmpruneError(
            f"unknown model alias {spec!r}; known aliases: {', '.join(sorted(ALIASES))} "
            "(a Hugging Face hub model is named org/name, a local folder by its path)"
        )
    return "hub", spec


def model_type_of(spec: str) -> str | None:
    """MODEL's `config.model_type`, read without any weights: from the alias, the GGUF header, config.json
    or the hub's config (milliseconds, except a first hub download of config.json)."""
    kind, loc = resolve_model_source(spec)
    if kind == "alias":
        from llmprune.models.aliases import ALIASES

        return ALIASES[loc].model_type
    if kind == "gguf":
        from llmprune.models.gguf_header import gguf_model_type

        return gguf_model_type(loc)
    if kind == "hub":
        from transformers import AutoConfig

        from llmprune import hub

        why = hub.unavailable()  # then only the local Hugging Face cache is asked, without retries
        try:
            return AutoConfig.from_pretrained(loc, trust_remote_code=False, local_files_only=why is not None).model_type
        except (OSError, ValueError) as e:
            if why is not None:
                raise LlmpruneError(
                    f"model {spec!r} is not in the local Hugging Face cache and the Hub cannot be used ({why}); "
                    f"download it where the Hub is reachable (`hf download {spec}`) or pass a local folder"
                ) from e
            raise LlmpruneError(f"could not read the config of {spec!r}: {str(e).splitlines()[0]}") from e
    file = Path(loc) / "config.json"
    try:
        config = json.loads(file.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise LlmpruneError(f"{file} is not valid JSON ({e}); the model folder is damaged") from e
    if not isinstance(config, dict) or not isinstance(config.get("model_type"), str):
        raise LlmpruneError(
            f"{file} names no model_type: it is not a transformers model config; the folder is damaged or "
            "incomplete, copy or download it again"
        )
    return config["model_type"]


def stored_dtype(spec: str) -> torch.dtype | None:
    """The dtype MODEL's weights are stored in, from its config.json (None when unknown or not a folder)."""
    kind, loc = resolve_model_source(spec)
    if kind == "alias":
        from llmprune.models.aliases import alias_dir

        loc = str(alias_dir(loc))
    file = Path(loc) / "config.json"
    if kind not in ("alias", "hf_dir", "llmprune") or not file.is_file():
        return None
    try:
        config = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    name = (config.get("dtype") or config.get("torch_dtype")) if isinstance(config, dict) else None
    return _DTYPES.get(name) if isinstance(name, str) else None


def num_layers_of(spec: str) -> int | None:
    """MODEL's decoder layer count from its config alone (no weights); None when no config is at hand (a
    GGUF file, an alias not converted yet, a hub model that cannot be reached)."""
    kind, loc = resolve_model_source(spec)
    if kind == "gguf":
        return None
    if kind == "hub":
        from transformers import AutoConfig

        try:
            config = AutoConfig.from_pretrained(loc).to_dict()
        except (OSError, ValueError):
            return None
    else:
        from llmprune.models.aliases import alias_dir

        file = (alias_dir(loc) if kind == "alias" else Path(loc)) / "config.json"
        try:
            config = json.loads(file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
    if not isinstance(config, dict):
        return None
    n = config.get("num_hidden_layers", (config.get("text_config") or {}).get("num_hidden_layers"))
    return n if isinstance(n, int) and not isinstance(n, bool) else None


def check_family(spec: str):
    """The family (`llmprune.arch.Family`) of MODEL, checked before any weights are read: an unsupported
    architecture fails here, naming the supported ones."""
    from llmprune.arch import family_for

    return family_for(model_type_of(spec))


def load_tokenizer(spec: str):
    from transformers import AutoTokenizer

    kind, loc = resolve_model_source(spec)
    if kind == "alias":
        loc = str(ensure_alias(loc))
    if kind == "gguf":
        p = Path(loc)
        return AutoTokenizer.from_pretrained(p.parent, gguf_file=p.name)
    return AutoTokenizer.from_pretrained(loc, trust_remote_code=False)


def _own_memory(model) -> None:
    """Copy into the process's own memory the tensors transformers left as views of the mapped safetensors
    files (weights loaded on the CPU in their stored dtype), one at a time. Mapped, they stay resident
    (file pages count in the resident set) as long as any tensor of a file lives: after surgery a 7B
    model would hold its 13.5 GB of dense pages beside the 10.8 GB it keeps. Copied, what surgery drops is
    given back at once."""
    with torch.no_grad():
        for t in [*model.parameters(), *model.buffers()]:
            if t.device.type == "cpu" and t.numel():
                t.data = t.data.clone()


def load_model(spec: str, *, dtype: str | torch.dtype = "auto", device: str = "auto", attn: str | None = None):
    """Load MODEL (see module doc) and its tokenizer; returns (model, tokenizer) in eval mode."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    dev = resolve_device(device)
    dt = resolve_dtype(dtype, dev, stored_dtype(spec) if dtype == "auto" else None)
    kind, loc = resolve_model_source(spec)
    kwargs = {"dtype": dt}
    if attn:
        kwargs["attn_implementation"] = attn
    if kind == "alias":
        loc, kind = str(ensure_alias(loc)), "hf_dir"
    if kind == "gguf":
        from llmprune.ggufio.keys import is_llmprune_gguf

        if is_llmprune_gguf(loc):  # written by `llmprune export` (deci included): llmprune's own reader
            from llmprune.ggufio.reader import load_llmprune_gguf

            model, tok = load_llmprune_gguf(loc, dtype=dt, attn=attn)
        else:
            from llmprune.models.gguf_convert import load_gguf

            model, tok = load_gguf(loc, dtype=dt)
            if attn:
                model.set_attn_implementation(attn)
    elif kind == "llmprune":
        from llmprune.surgery.io import load_pruned

        model = load_pruned(loc, dtype=dt, attn=attn)
        tok = AutoTokenizer.from_pretrained(loc)
    else:
        from safetensors import SafetensorError

        if kind == "hf_dir":
            model_type_of(loc)  # a config.json without a model type is named, not a transformers traceback
        where = "folder" if kind == "hf_dir" else "hub id"
        try:
            model = AutoModelForCausalLM.from_pretrained(loc, use_safetensors=True, trust_remote_code=False, **kwargs)
            tok = AutoTokenizer.from_pretrained(loc, trust_remote_code=False)
        except OSError as e:
            raise LlmpruneError(
                f"could not load model {spec!r} ({where}): {str(e).splitlines()[0]}. "
                "Only safetensors weights are loaded; offline, pass a local folder or a .gguf file"
            ) from e
        except SafetensorError as e:
            raise LlmpruneError(
                f"the weights of {spec!r} cannot be read ({e}): a safetensors file is damaged or incomplete; "
                "copy or download the model again"
            ) from e
        except ValueError as e:  # custom code (trust_remote_code), unknown architecture, inconsistent config
            first = str(e).splitlines()[0] if str(e) else type(e).__name__
            hint = (
                "llmprune never runs a model folder's own code: use a model that stock transformers builds"
                if "trust_remote_code" in str(e) or "custom code" in str(e)
                else "the folder's config.json does not describe a model transformers can build"
            )
            raise LlmpruneError(f"could not load model {spec!r} ({where}): {first}; {hint}") from e
        if dev.type == "cpu":
            _own_memory(model)
    model.to(dev)
    model.eval()
    return model, tok
