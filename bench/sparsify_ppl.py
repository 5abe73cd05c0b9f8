"""WikiText-2 perplexity of SmolLM2 sparsified by magnitude, Wanda, N:M and global magnitude (one table, one run).

    python bench/sparsify_ppl.py [--windows 256] [--samples 64] [--seq-len 512] [--only wanda,magnitude] [--json out.json]

Each row sparsifies a fresh copy of the dense model with `sparsify_` and reports WikiText-2 test perplexity
on the first N windows of 128 tokens, the time the sparsification took and the ratio to the dense model's
perplexity measured in the same run. Wanda rows share one set of calibration windows (C4, reference sampling).
"""

from __future__ import annotations

import argparse
import copy
import time

from llmprune.data import load_text
from llmprune.eval.ppl import perplexity
from llmprune.fsutil import atomic_write_json
from llmprune.models import load_model
from llmprune.sparsify import SparsifyConfig, calibration_windows, sparsify_, wanda_calib

ROWS: list[tuple[str, str, float | None, str | None, bool]] = [  # (label, method, sparsity, pattern, sequential)
    ("magnitude", "magnitude", 0.5, None, True),
    ("wanda", "wanda", 0.5, None, True),
    ("wanda-one-shot", "wanda", 0.5, None, False),
    ("magnitude-2:4", "magnitude", None, "2:4", True),
    ("wanda-2:4", "wanda", None, "2:4", True),
    ("wanda-2:4-one-shot", "wanda", None, "2:4", False),
    ("global-magnitude", "global-magnitude", 0.5, None, True),
]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--windows", type=int, default=256, help="WikiText-2 test windows of 128 tokens")
    ap.add_argument("--samples", type=int, default=64, help="Wanda calibration windows")
    ap.add_argument("--seq-len", type=int, default=512, help="Wanda calibration window length")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--only", default=None, help="comma-separated row labels: " + ",".join(r[0] for r in ROWS))
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    rows = [r for r in ROWS if not args.only or r[0] in args.only.split(",")]
    dense, tok = load_model(args.model)
    text = load_text("wikitext2")
    calib = wanda_calib(samples=args.samples, seq_len=args.seq_len, seed=args.seed)
    batches = calibration_windows(tok, calib) if any(r[1] == "wanda" for r in rows) else None

    def ppl_of(model) -> float:
        return perplexity(model, tok, text, seq_len=128, max_windows=args.windows, batch_size=16, progress=False)[0]

    base = ppl_of(dense)
    results = [{"label": "dense", "ppl": base, "ratio": 1.0, "sparsity": 0.0, "seconds": 0.0}]
    print(f"{'method':<18}{'sparsity':>9}{'seconds':>9}{'ppl@' + str(args.windows):>10}{'x dense':>9}")
    print(f"{'dense':<18}{0:>9.3f}{0:>9.1f}{base:>10.2f}{1:>9.2f}", flush=True)
    for label, method, sparsity, pattern, sequential in rows:
        model = copy.deepcopy(dense)
        cfg = SparsifyConfig(
            method=method, sparsity=sparsity, pattern=pattern, calib=copy.deepcopy(calib), sequential=sequential
        )
        t = time.perf_counter()
        report = sparsify_(model, cfg, tok, batches=batches, progress=False)
        secs = time.perf_counter() - t
        ppl = ppl_of(model)
        achieved = report["achieved"]["overall"]
        results.append({"label": label, "ppl": ppl, "ratio": ppl / base, "sparsity": achieved, "seconds": secs})
        print(f"{label:<18}{achieved:>9.3f}{secs:>9.1f}{ppl:>10.2f}{ppl / base:>9.2f}", flush=True)
        del model
    if args.json:
        atomic_write_json(args.json, {"args": vars(args), "results": results})


if __name__ == "__main__":
    main()
