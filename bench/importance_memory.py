"""Peak memory of gradient importance, lean (each gradient reduced to unit scores as soon as it is final)
against an earlier commit that kept an fp32 copy of every gradient, in the same run; and the scores of both.

For each method, `llmprune prune MODEL --engine taylor --importance METHOD --out TMP` runs once with this
checkout and once with `--baseline REF` (checked out into a temporary git worktree), each in a fresh
process. Peak RSS is the `memory` section of report.json (VmHWM from after the model is loaded to the end
of pruning); scores.safetensors of both runs are compared (max |a - b| / max |b| over every group).

    python bench/importance_memory.py --model smollm2-135m --methods element1,element2,vector
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from safetensors.torch import load_file

from llmprune.fsutil import atomic_write_json

ROOT = Path(__file__).resolve().parents[1]
BASELINE = "4ac818e"  # the last commit whose gradient importance kept every gradient whole in fp32


def prune(code: Path, model: str, method: str, ratio: float, out: Path) -> dict:
    cmd = [sys.executable, "-m", "llmprune", "prune", model, "--ratio", str(ratio), "--out", str(out)]
    cmd += ["--engine", "taylor", "--importance", method]
    env = {**os.environ, "PYTHONPATH": str(code)}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=code)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} (code {code}) failed:\n{proc.stderr[-2000:]}")
    return json.loads((out / "report.json").read_text())


def score_difference(a: Path, b: Path) -> float:
    """Largest relative difference between two scores.safetensors, group by group."""
    sa, sb = load_file(str(a)), load_file(str(b))
    if sa.keys() != sb.keys():
        raise SystemExit(f"{a} and {b} score different groups")
    return max(float((sa[k] - sb[k]).abs().max() / sb[k].abs().max().clamp(min=1e-30)) for k in sa)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--ratio", type=float, default=0.2)
    ap.add_argument("--methods", default="element1,element2,vector")
    ap.add_argument("--baseline", default=BASELINE, help="git commit of the whole-gradient implementation")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="importance-memory-") as tmp:
        base = Path(tmp) / "baseline"
        subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "add", "-q", "--detach", str(base), args.baseline], check=True
        )
        try:
            for method in args.methods.split(","):
                now = prune(ROOT, args.model, method, args.ratio, Path(tmp) / f"{method}-lean")
                then = prune(base, args.model, method, args.ratio, Path(tmp) / f"{method}-whole")
                diff = score_difference(
                    Path(tmp) / f"{method}-lean/scores.safetensors", Path(tmp) / f"{method}-whole/scores.safetensors"
                )
                rows.append(
                    {
                        "method": method,
                        "peak_rss_whole": then["memory"]["peak_rss_bytes"],
                        "peak_rss_lean": now["memory"]["peak_rss_bytes"],
                        "seconds_whole": then["seconds"],
                        "seconds_lean": now["seconds"],
                        "max_relative_score_difference": diff,
                    }
                )
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(base)], check=False)
    print(f"baseline {args.baseline}: whole fp32 gradients; lean: this checkout ({args.model}, {args.ratio:.0%})")
    print(f"{'method':10} {'peak RSS whole':>15} {'peak RSS lean':>14} {'lean/whole':>11} {'score diff':>11}")
    for r in rows:
        whole, lean = r["peak_rss_whole"], r["peak_rss_lean"]
        print(
            f"{r['method']:10} {whole / 2**30:14.2f}G {lean / 2**30:13.2f}G {lean / whole:11.2f} "
            f"{r['max_relative_score_difference']:11.2e}"
        )
    if args.json:
        atomic_write_json(args.json, {"model": args.model, "baseline": args.baseline, "rows": rows})


if __name__ == "__main__":
    main()
