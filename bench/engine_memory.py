"""Peak memory and time of pruning, per engine, measured in the same run (one fresh process each).

Each variant runs `llmprune prune MODEL --ratio R ... --out TMP` in its own process and reads the
`memory` section of its report.json: the resident-set high-water mark from just before pruning to its end
(VmHWM, reset after the model is loaded: the loaded model counts, the imports do not), and the seconds
pruning took; and the whole process's high-water mark (`process`: imports, loading, pruning and saving,
from `wait4`). With `--offload` the model is never whole in memory: only the non-layer weights and the
current layer (each pruned layer is written to disk and freed when it is done). Prints one row per
variant and the ratios to the first.

    python bench/engine_memory.py --model smollm2-135m
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

from llmprune.fsutil import atomic_write_json


def variants(allocation: str) -> dict[str, list[str]]:
    """Offload needs an allocation without a gradient pass; it is also run in memory, to compare like with like."""
    seq = ["--engine", "sequential"]
    return {
        "taylor (today's engine)": ["--engine", "taylor"],
        "sequential": [*seq, "--no-offload"],
        f"sequential {allocation}": [*seq, "--allocation", allocation, "--no-offload"],
        f"sequential {allocation} --offload": [*seq, "--allocation", allocation, "--offload"],
    }


def run(model: str, ratio: float, extra: list[str], out: Path) -> tuple[dict, int]:
    """(report.json, the process's peak RSS in bytes) of one `llmprune prune` process."""
    cmd = [sys.executable, "-m", "llmprune", "prune", model, "--ratio", str(ratio), "--out", str(out), *extra]
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)  # reaps the child with its resource usage
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            err.seek(0)
            raise SystemExit(f"{' '.join(cmd)} failed:\n{err.read().decode(errors='replace')[-2000:]}")
    return json.loads((out / "report.json").read_text()), usage.ru_maxrss * 1024  # Linux: KiB


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--ratio", type=float, default=0.2)
    ap.add_argument(
        "--allocation", default="depth", help="allocation of the offload rows: depth, error or error-std (no gradients)"
    )
    ap.add_argument(
        "--prune-args", default="", help="more `llmprune prune` options for every variant, e.g. --samples 8"
    )
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    more = shlex.split(args.prune_args)
    rows = []
    with tempfile.TemporaryDirectory(prefix="engine-memory-") as tmp:
        for i, (name, extra) in enumerate(variants(args.allocation).items()):
            report, process = run(args.model, args.ratio, [*extra, *more], Path(tmp) / f"out{i}")
            rows.append(
                {
                    "variant": name,
                    "peak_rss_bytes": report["memory"]["peak_rss_bytes"],
                    "process_peak_rss_bytes": process,
                    "seconds": report["seconds"],
                    "removed": report["ratio_removed"],
                }
            )
    first, whole = rows[0]["peak_rss_bytes"], rows[0]["process_peak_rss_bytes"]
    print(
        f"{'variant':34} {'peak RSS':>10} {'x first':>8} {'process':>10} {'x first':>8} {'seconds':>8} {'removed':>8}"
    )
    for r in rows:
        gib, proc_gib = r["peak_rss_bytes"] / 2**30, r["process_peak_rss_bytes"] / 2**30
        print(
            f"{r['variant']:34} {gib:9.2f}G {r['peak_rss_bytes'] / first:8.2f} {proc_gib:9.2f}G "
            f"{r['process_peak_rss_bytes'] / whole:8.2f} {r['seconds']:8.1f} {r['removed']:8.2%}"
        )
    if args.json:
        atomic_write_json(args.json, {"model": args.model, "ratio": args.ratio, "rows": rows})


if __name__ == "__main__":
    main()
