"""What a model costs to keep: weights bytes on disk and peak memory while it runs.

- `weights_files(spec)`: the weights files of MODEL, the ones `load_model` reads: the shards named by
  `model.safetensors.index.json`, else `model.safetensors` (other `.safetensors` files in the folder, such
  as a run's `scores.safetensors`, are not weights); for an alias its converted cache folder; for a hub id
  the files in the local Hugging Face cache; for a `.gguf` the file itself.
- Peak memory is *model + workload*: the weights plus the largest working set of one greedy `generate`
  at the largest batch (prefill, KV cache, logits).
  - CUDA: bytes allocated by torch for the weights (`memory_allocated` delta across the load) plus the
    `max_memory_allocated` rise during the workload. Caching-allocator reserve is not counted.
  - CPU: a fresh Python process imports torch/transformers/llmprune, resets its resident-set high-water
    mark (Linux: `5` into `/proc/self/clear_refs`) and reads its resident set size, loads the model, runs
    the workload and reads the high-water mark (`VmHWM`); the difference is reported. It counts every
    page the process touched for the model (weights, allocator arenas, transient copies made while
    loading), so it is an upper bound on the steady state, measured the same way for a model and its
    baseline. Without `/proc` the peak comes from `getrusage(RUSAGE_SELF).ru_maxrss`, which cannot be
    reset: a model smaller than the import-time peak then reads as 0.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

from llmprune.errors import LlmpruneError
from llmprune.perf.memory import proc_kib
from llmprune.runfolder import WEIGHTS_INDEX, RunFolder


def _hub_folder(repo_id: str) -> Path:
    from huggingface_hub import snapshot_download

    try:
        return Path(
            snapshot_download(
                repo_id, local_files_only=True, allow_patterns=["*.safetensors", WEIGHTS_INDEX, "config.json"]
            )
        )
    except Exception as e:  # not cached (offline), or an invalid id
        raise LlmpruneError(
            f"{repo_id} is not in the local Hugging Face cache ({type(e).__name__}); load it once online, "
            "or pass a local folder"
        ) from e


def weights_files(spec: str) -> list[Path]:
    """The weights files `load_model(spec)` reads (see the module doc)."""
    from llmprune.models.aliases import ensure_alias
    from llmprune.models.load import resolve_model_source

    kind, loc = resolve_model_source(spec)
    if kind == "gguf":
        return [Path(loc)]
    if kind == "alias":
        return RunFolder(ensure_alias(loc)).weight_files()
    if kind == "hub":
        return RunFolder(_hub_folder(loc)).weight_files()
    return RunFolder(loc).weight_files()


def disk_bytes(spec: str) -> int:
    """Bytes of the weights files of `spec` (symlinks in the hub cache are followed)."""
    return sum(f.stat().st_size for f in weights_files(spec))


def reset_peak_rss() -> int:
    """Reset the resident-set high-water mark where the OS allows it; returns the current RSS in bytes."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass
    rss = proc_kib("/proc/self/status", "VmRSS")
    return rss * 1024 if rss is not None else peak_rss()


def peak_rss() -> int:
    """Resident-set high-water mark of this process, in bytes."""
    hwm = proc_kib("/proc/self/status", "VmHWM")
    if hwm is not None:
        return hwm * 1024
    import resource

    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss if sys.platform == "darwin" else rss * 1024  # Linux reports KiB, macOS bytes


def reset_peaks(device) -> None:
    """Start measuring peak memory now: the resident-set mark, and CUDA's allocation peak on a GPU."""
    reset_peak_rss()
    if getattr(device, "type", device) == "cuda":
        import torch

        torch.cuda.reset_peak_memory_stats(device)


def peaks(device) -> dict[str, int]:
    """Peak memory since `reset_peaks`: `peak_rss_bytes` (VmHWM) and, on a GPU, `cuda_max_allocated_bytes`."""
    out = {"peak_rss_bytes": peak_rss()}
    if getattr(device, "type", device) == "cuda":
        import torch

        out["cuda_max_allocated_bytes"] = int(torch.cuda.max_memory_allocated(device))
    return out


def weights_bytes(spec: str, dtype) -> int:
    """Bytes of MODEL's weights once loaded in `dtype` (from the safetensors headers: no tensor is read)."""
    import torch
    from safetensors import safe_open

    size = torch.empty((), dtype=dtype).element_size()
    total = 0
    for file in weights_files(spec):
        with safe_open(str(file), framework="pt", device="cpu") as f:
            for name in f.keys():
                total += math.prod(f.get_slice(name).get_shape()) * size
    return total


def cpu_peak_memory(
    spec: str, *, dtype: str, prompt_len: int, new_tokens: int, batch: int, threads: int, timeout: float = 900
) -> int:
    """Peak RSS growth (bytes) of a fresh process that loads `spec` and runs one `generate` (module doc)."""
    args = {
        "spec": spec,
        "dtype": dtype,
        "prompt_len": prompt_len,
        "new_tokens": new_tokens,
        "batch": batch,
        "threads": threads,
    }
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parents[2])  # this llmprune, even when run from a source tree
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p)
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "llmprune.perf.footprint", json.dumps(args)],
            capture_output=True,
            text=True,
            env=env,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired as e:
        raise LlmpruneError(f"the memory probe of {spec} took over {timeout:.0f} s; lower --batch-sizes") from e
    if proc.returncode != 0:
        tail = (proc.stderr or "").strip().splitlines()[-3:]
        raise LlmpruneError(f"the memory probe of {spec} failed: {' | '.join(tail)}")
    return int(json.loads(proc.stdout.strip().splitlines()[-1])["peak_bytes"])


def _probe(args: dict) -> dict:
    import torch
    from transformers import AutoModelForCausalLM  # noqa: F401  (import what loading needs before reading)

    import llmprune.surgery.io  # noqa: F401
    from llmprune.models import load_model
    from llmprune.perf.generate import prompt_ids, timed_generate

    torch.set_num_threads(args["threads"])
    before = reset_peak_rss()
    model, _ = load_model(args["spec"], dtype=args["dtype"], device="cpu")
    ids = prompt_ids(model.config.vocab_size, args["batch"], args["prompt_len"], torch.device("cpu"))
    timed_generate(model, ids, args["new_tokens"])
    return {"peak_bytes": peak_rss() - before, "baseline_rss_bytes": before}


if __name__ == "__main__":  # the child process of cpu_peak_memory
    print(json.dumps(_probe(json.loads(sys.argv[1]))))
