"""Speed and size benchmark of a model, optionally against a baseline measured in the same run.

Per model: parameters (tied embedding once), weights bytes on disk, peak memory (see
`llmprune.perf.footprint`), and for every batch size the prefill latency and the decode throughput of
one greedy `generate` with a KV cache (`llmprune.perf.generate`: a random prompt of `prompt_len` tokens,
exactly `new_tokens` new tokens);

- each figure is the median over `repeats` runs after a short warm-up run per batch size. With a baseline the
  runs are interleaved (model, baseline, baseline, model, ...) so that drift on a shared machine hits both.

Ratios are model / baseline for parameters, disk, memory and prefill latency, and model / baseline
tokens/s (a speedup) for decode.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch

from llmprune.perf.config import BenchConfig
from llmprune.perf.generate import prompt_ids, timed_generate


@dataclass
class Timings:
    """Raw per-repeat timings of one model: {batch: [seconds]} and {batch: [tokens/s]}."""

    prefill_s: dict[int, list[float]] = field(default_factory=dict)
    decode_tps: dict[int, list[float]] = field(default_factory=dict)


def _interleaved(names: Sequence[str], repeat: int) -> list[str]:
    """Alternate the order every repeat (a b, b a, a b, ...) so drift affects every model alike."""
    return list(names) if repeat % 2 == 0 else list(reversed(names))


def time_models(models: dict[str, object], cfg: BenchConfig, *, progress: bool = True) -> dict[str, Timings]:
    """Prefill and decode timings of every model in `models`, interleaved, one warm-up per batch size."""
    from tqdm.auto import tqdm

    vocab = min(m.config.vocab_size for m in models.values())
    device = next(next(iter(models.values())).parameters()).device
    prompts = {b: prompt_ids(vocab, b, cfg.prompt_len, device) for b in cfg.batch_sizes}
    out = {name: Timings() for name in models}
    for b in cfg.batch_sizes:  # warm-up (short prompts, cheap): lazy imports, allocator, per-batch kernels
        for m in models.values():
            timed_generate(m, prompts[b][:, : min(8, cfg.prompt_len)], 2)
    steps = [(r, b, name) for r in range(cfg.repeats) for b in cfg.batch_sizes for name in _interleaved(models, r)]
    for _, b, name in tqdm(steps, desc="bench", disable=not progress):
        prefill, tps = timed_generate(models[name], prompts[b], cfg.new_tokens)
        out[name].prefill_s.setdefault(b, []).append(prefill)
        out[name].decode_tps.setdefault(b, []).append(tps)
    return out


def _ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or not b else a / b


def ratios(model: dict, baseline: dict) -> dict:
    """model / baseline for params, disk, memory and prefill latency; decode speedup per batch size."""
    return {
        "params": _ratio(model["params"], baseline["params"]),
        "disk_bytes": _ratio(model["disk_bytes"], baseline["disk_bytes"]),
        "peak_memory_bytes": _ratio(model.get("peak_memory_bytes"), baseline.get("peak_memory_bytes")),
        "prefill_s": {b: _ratio(v, baseline["prefill_s"].get(b)) for b, v in model["prefill_s"].items()},
        "prefill_speedup": {b: _ratio(baseline["prefill_s"].get(b), v) for b, v in model["prefill_s"].items()},
        "decode_speedup": {
            b: _ratio(v, baseline["decode_tokens_per_s"].get(b)) for b, v in model["decode_tokens_per_s"].items()
        },
    }


def _cuda_weights_and_model(spec: str, cfg: BenchConfig):
    from llmprune.models import load_model

    before = torch.cuda.memory_allocated()
    model, _ = load_model(spec, dtype=cfg.dtype, device=cfg.device)
    return model, torch.cuda.memory_allocated() - before


def _cuda_peak(model, cfg: BenchConfig, weights: int) -> int:
    device = next(model.parameters()).device
    ids = prompt_ids(model.config.vocab_size, max(cfg.batch_sizes), cfg.prompt_len, device)
    torch.cuda.synchronize(device)
    torch.cuda.reset_peak_memory_stats(device)
    base = torch.cuda.memory_allocated(device)
    timed_generate(model, ids, cfg.new_tokens)
    return weights + torch.cuda.max_memory_allocated(device) - base


def bench(spec: str, baseline: str | None = None, cfg: BenchConfig | None = None, *, progress: bool = True) -> dict:
    """Benchmark `spec` (and `baseline`, in the same run); returns the JSON-ready result (module doc)."""
    from llmprune.models.load import load_model, resolve_device, resolve_dtype, resolve_model_source, stored_dtype
    from llmprune.models.params import count_params
    from llmprune.perf.footprint import cpu_peak_memory, disk_bytes

    cfg = cfg or BenchConfig()
    device = resolve_device(cfg.device)
    specs = {"model": spec} | ({"baseline": baseline} if baseline else {})
    for s in specs.values():  # bad input fails before any model is loaded
        resolve_model_source(s)
    dtype = resolve_dtype(cfg.dtype, device, stored_dtype(spec))  # one dtype for the model and its baseline
    t0 = time.perf_counter()
    info: dict[str, dict] = {name: {"spec": s, "disk_bytes": disk_bytes(s)} for name, s in specs.items()}
    models = {}
    for name, s in specs.items():
        if device.type == "cuda":
            models[name], weights = _cuda_weights_and_model(s, cfg)
            info[name]["cuda_weights_bytes"] = weights
        else:
            models[name], _ = load_model(s, dtype=dtype, device=str(device))
        info[name]["params"] = count_params(models[name])
    timings = time_models(models, cfg, progress=progress)
    for name, m in models.items():
        if not cfg.memory:
            info[name]["peak_memory_bytes"] = None
        elif device.type == "cuda":
            info[name]["peak_memory_bytes"] = _cuda_peak(m, cfg, info[name].pop("cuda_weights_bytes"))
        else:
            info[name]["peak_memory_bytes"] = cpu_peak_memory(
                specs[name],
                dtype=str(dtype).removeprefix("torch."),
                prompt_len=cfg.prompt_len,
                new_tokens=cfg.new_tokens,
                batch=max(cfg.batch_sizes),
                threads=torch.get_num_threads(),
            )
        t = timings[name]
        info[name]["prefill_s"] = {str(b): statistics.median(v) for b, v in t.prefill_s.items()}
        info[name]["decode_tokens_per_s"] = {str(b): statistics.median(v) for b, v in t.decode_tps.items()}
        info[name]["runs"] = {"prefill_s": _str_keys(t.prefill_s), "decode_tokens_per_s": _str_keys(t.decode_tps)}
    result = {
        "config": cfg.model_dump() | {"batch_sizes": list(cfg.batch_sizes), "dtype": str(dtype).removeprefix("torch.")},
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "threads": torch.get_num_threads(),
        "memory_method": (
            "cuda: weights (memory_allocated across the load) + max_memory_allocated rise of one generate at "
            "the largest batch"
            if device.type == "cuda"
            else "cpu: peak resident set (VmHWM, reset after imports) minus the resident set before loading, in a "
            "fresh process that loads the model and runs one generate at the largest batch"
        ),
        "models": info,
    }
    if baseline:
        result["ratios"] = ratios(info["model"], info["baseline"])
    result["seconds"] = round(time.perf_counter() - t0, 2)
    return result


def _str_keys(d: dict[int, list[float]]) -> dict[str, list[float]]:
    return {str(k): [round(x, 6) for x in v] for k, v in d.items()}
