"""Perplexity of SmolLM2 pruned by 20% with every importance x aggregation (one table, one run).

    python bench/importance_table.py [--windows 64] [--ratio 0.2] [--no-reconstruct] [--json out.json]

Each row prunes a fresh copy of the dense model with `prune_model` (the recipe's other settings:
block scope, global ranking, 10 x 64 calibration tokens from WikiText-2 valid) and reports WikiText-2
test perplexity on the first N windows of 128 tokens; the dense model is measured in the same run.
"""

from __future__ import annotations

import argparse
import copy
import json
import time

from llmprune.data import load_text
from llmprune.eval.ppl import perplexity
from llmprune.models import count_params, load_model
from llmprune.prune.config import PruneConfig
from llmprune.prune.pipeline import prune_model

ROWS = [(m, "sum") for m in ("element1", "element2", "vector", "magnitude", "l2", "activation", "random")] + [
    ("element1", a) for a in ("mean", "max", "prod", "last")
]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--ratio", type=float, default=0.2)
    ap.add_argument("--windows", type=int, default=64)
    ap.add_argument("--ranking", default="global", choices=("global", "layer"))
    ap.add_argument("--layers", default=None)
    ap.add_argument("--no-reconstruct", action="store_true")
    ap.add_argument("--only", default=None, help="comma-separated importance:aggregate rows to run")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    dense, tok = load_model(args.model)
    text = load_text("wikitext2")
    rows = ROWS if not args.only else [tuple(r.split(":")) for r in args.only.split(",")]
    ppl, _ = perplexity(dense, tok, text, seq_len=128, max_windows=args.windows, batch_size=16, progress=False)
    results = [{"importance": "dense", "aggregate": "-", "ppl": ppl, "params": count_params(dense), "seconds": 0.0}]
    print(
        f"{'importance':<12}{'aggregate':<10}{'params':>12}{'ratio':>8}{'prune s':>9}{'ppl@' + str(args.windows):>10}"
    )
    print(f"{'dense':<12}{'-':<10}{results[0]['params']:>12,}{0:>8.3f}{0:>9.1f}{ppl:>10.2f}", flush=True)
    for method, agg in rows:
        model = copy.deepcopy(dense)
        cfg = PruneConfig(
            ratio=args.ratio,
            importance=method,
            aggregate=agg,
            ranking=args.ranking,
            layers=args.layers,
            reconstruct=not args.no_reconstruct,
        )
        t = time.perf_counter()
        res = prune_model(model, tok, cfg, progress=False)
        secs = time.perf_counter() - t
        ppl, _ = perplexity(model, tok, text, seq_len=128, max_windows=args.windows, batch_size=16, progress=False)
        results.append(
            {
                "importance": method,
                "aggregate": agg,
                "ppl": ppl,
                "params": res.params_after,
                "ratio_removed": res.ratio_removed,
                "seconds": secs,
            }
        )
        print(
            f"{method:<12}{agg:<10}{res.params_after:>12,}{res.ratio_removed:>8.3f}{secs:>9.1f}{ppl:>10.2f}", flush=True
        )
        del model
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"args": vars(args), "results": results}, f, indent=2)


if __name__ == "__main__":
    main()
