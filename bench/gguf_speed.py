"""How much faster is a pruned model in llama.cpp? `llama-bench` pp128 / tg128 tokens/s of exported GGUF
files, pruned against dense in the same run.

    python bench/llama_cpp_build.py    # once
    python bench/gguf_speed.py dense=smollm2-135m s20=runs/s20 s20-r32=runs/s20-r32 s20-r64=runs/s20-r64 \\
        --outtypes f16,q8_0 --threads 2 --out bench-results/gguf_speed.json

The first MODEL is the baseline. Each is exported per outtype, then `llama-bench` measures all of them
(`-p 128 -n 128 -t THREADS -r REPS -o json`) in ROUNDS calls, the models' order rotated from call to call,
and each figure is the median of every repetition's tokens/s: a small model decodes in a few
milliseconds per token, and blocks of repetitions differed by +-8% on a 2-core machine (the same pair read
1.07x in one block-per-model run, 1.25-1.34x in another). Beside the speed-ups it prints the
parameter-bytes ratio (bytes of the GGUF tensors, the data decode reads per token): the physical limit of
a memory-bound tg128.
Pruned with different `round_to` (1 vs 32/64), the same table shows what aligned widths buy.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import tempfile
from pathlib import Path

import gguf
from llama_cpp_build import binary  # the sibling script (bench/ is on sys.path when run)

from llmprune.fsutil import atomic_write_json
from llmprune.ggufio.writer import export_gguf


def tensor_bytes(path: Path) -> int:
    return sum(int(t.n_bytes) for t in gguf.GGUFReader(path).tensors)


def llama_bench(paths: list[Path], threads: int, reps: int) -> list[dict]:
    cmd = [str(binary("llama-bench")), "-m", ",".join(map(str, paths)), "-p", "128", "-n", "128"]
    cmd += ["-t", str(threads), "-r", str(reps), "-o", "json"]
    return json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout)


def interleaved(paths: list[Path], threads: int, reps: int, rounds: int) -> dict[tuple[str, str], float]:
    """(file name, test) -> median tokens/s over every repetition of `rounds` llama-bench calls, the
    models' order rotated between calls so that no model always runs first or last."""
    samples: dict[tuple[str, str], list[float]] = {}
    for k in range(rounds):
        order = paths[k % len(paths) :] + paths[: k % len(paths)]
        for r in llama_bench(order, threads, reps):
            test = f"pp{r['n_prompt']}" if r["n_prompt"] else f"tg{r['n_gen']}"
            samples.setdefault((Path(r["model_filename"]).name, test), []).extend(map(float, r["samples_ts"]))
    return {key: statistics.median(v) for key, v in samples.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("models", nargs="+", help="NAME=SPEC pairs; the first is the baseline")
    ap.add_argument("--outtypes", default="f16,q8_0")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=3, help="repetitions per model in each llama-bench call")
    ap.add_argument("--rounds", type=int, default=4, help="llama-bench calls, the models' order rotated")
    ap.add_argument("--work", default=None, help="folder for the GGUF files (default: a temporary one)")
    ap.add_argument("--out", default=None, help="JSON results")
    args = ap.parse_args()
    models = [m.split("=", 1) for m in args.models]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(args.work or tmp)
        work.mkdir(parents=True, exist_ok=True)
        for outtype in args.outtypes.split(","):
            files = [export_gguf(spec, work / f"{name}-{outtype}.gguf", outtype=outtype).path for name, spec in models]
            speed = interleaved(files, args.threads, args.reps, args.rounds)
            base = files[0]
            for (name, _), f in zip(models, files, strict=True):
                row = {"model": name, "outtype": outtype, "bytes": tensor_bytes(f)}
                for test in ("pp128", "tg128"):
                    row[test] = speed[(f.name, test)]
                    row[f"{test}_x"] = speed[(f.name, test)] / speed[(base.name, test)]
                row["bytes_x"] = tensor_bytes(base) / row["bytes"]
                rows.append(row)
                print(json.dumps(row), flush=True)
    print(
        f"\n| model | outtype | pp128 tok/s | x | tg128 tok/s | x | parameter bytes x (limit) |  ({args.threads} threads)"
    )
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        print(
            f"| {r['model']} | {r['outtype']} | {r['pp128']:.1f} | {r['pp128_x']:.2f} | {r['tg128']:.1f} | "
            f"{r['tg128_x']:.2f} | {r['bytes_x']:.2f} |"
        )
    if args.out:
        atomic_write_json(args.out, {"threads": args.threads, "reps": args.reps, "rounds": args.rounds, "rows": rows})


if __name__ == "__main__":
    main()
