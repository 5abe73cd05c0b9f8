"""Rows of the benchmark table (CLI and report): metric, model, [baseline, ratio]."""

from __future__ import annotations


def _mib(n: int | None) -> str:
    return "" if n is None else f"{n / 2**20:,.1f} MiB"


def _fmt_ratio(r: float | None, suffix: str = "") -> str:
    return "" if r is None else f"{r:.3f}{suffix}"


def bench_rows(result: dict) -> list[list[str]]:
    """Table rows: metric, model, [baseline, ratio]."""
    models = result["models"]
    m, b = models["model"], models.get("baseline")
    r = result.get("ratios", {})

    def row(label, key, fmt, ratio=None):
        out = [label, fmt(m[key])]
        if b is not None:
            out += [fmt(b[key]), ratio if ratio is not None else _fmt_ratio(r.get(key))]
        return out

    out = [
        row("parameters", "params", lambda v: f"{v:,}"),
        row("weights on disk", "disk_bytes", _mib),
        row("peak memory", "peak_memory_bytes", _mib),
    ]
    for bs in m["prefill_s"]:
        label = f"prefill latency b{bs} ({result['config']['prompt_len']} tok)"
        out.append([label, f"{m['prefill_s'][bs] * 1000:.1f} ms"])
        if b is not None:
            out[-1] += [
                f"{b['prefill_s'][bs] * 1000:.1f} ms",
                f"{_fmt_ratio(r['prefill_s'][bs])} ({_fmt_ratio(r['prefill_speedup'][bs], 'x faster')})",
            ]
    for bs in m["decode_tokens_per_s"]:
        whole = f" (all {bs} sequences)" if int(bs) > 1 else ""  # the batch's tokens together, not one sequence's
        out.append([f"decode tokens/s b{bs}{whole}", f"{m['decode_tokens_per_s'][bs]:.1f}"])
        if b is not None:
            out[-1] += [f"{b['decode_tokens_per_s'][bs]:.1f}", _fmt_ratio(r["decode_speedup"][bs], "x speedup")]
    return out
