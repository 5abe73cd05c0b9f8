"""Shared-prefix vs lm-eval's own loop: time, agreement and tokens on the same examples, same run.

    python bench/zeroshot_scorers.py --model smollm2-135m --limit 24
    python bench/zeroshot_scorers.py --tasks hellaswag --limit 64 --batch-size 16 --json scorers.json

For each task, `--limit` examples spread evenly through the file are scored by both scorers of
`llmprune eval --scorer` (after one warm-up example each), in alternating order. Prints per task the
seconds of each, the speed-up (lm-eval seconds / shared-prefix seconds), the largest log-likelihood
difference, whether every acc / acc_norm pick agrees, and the tokens of one sequence per request vs the
packed sequences. (lm-eval itself runs a context once when all its continuations are one token long, as
in BoolQ, so there its real token count is the packed one; its time still includes the whole-vocabulary
logits at every position.)
"""

from __future__ import annotations

import time

import torch


def main() -> None:
    from zeroshot_estimate import load, parser, spread  # the sibling script (bench/ is on sys.path when run)

    args = parser(__doc__, limit=24, batch_size=8).parse_args()

    from rich.console import Console
    from rich.table import Table

    from llmprune.eval.shared_prefix import lm_eval_encodings, pack_requests
    from llmprune.eval.zeroshot import evaluate_task, score_examples, task_loglikelihoods

    tasks, model, tok, lm = load(args)
    scorers = ("lm-eval", "shared-prefix")
    for s in scorers:  # warm-up: lazy imports, kernels
        evaluate_task(lm, spread(tasks[0], 1), progress=False, scorer=s, batch_size=args.batch_size)
    rows = []
    for k, task in enumerate(tasks):
        sub = spread(task, args.limit)
        secs, lls = {}, {}
        for s in scorers if k % 2 == 0 else scorers[::-1]:
            t0 = time.perf_counter()
            lls[s] = task_loglikelihoods(lm, sub, progress=False, scorer=s, batch_size=args.batch_size)
            secs[s] = time.perf_counter() - t0
        picks = {s: score_examples(sub.examples, lls[s])[2:] for s in scorers}
        flat = [r for ex in sub.examples for r in ex.requests]
        enc = lm_eval_encodings(lm, flat)
        groups, i = [], 0
        for ex in sub.examples:
            groups.append(range(i, i + len(ex.requests)))
            i += len(ex.requests)
        rows.append(
            {
                "task": task.name,
                "examples": len(sub.examples),
                "lm_eval_s": round(secs["lm-eval"], 2),
                "shared_prefix_s": round(secs["shared-prefix"], 2),
                "speedup": round(secs["lm-eval"] / secs["shared-prefix"], 3),
                "max_abs_ll_diff": max(
                    abs(a - b)
                    for x, y in zip(lls["lm-eval"], lls["shared-prefix"], strict=True)
                    for a, b in zip(x, y, strict=True)
                ),
                "same_picks": picks["lm-eval"] == picks["shared-prefix"],
                "tokens_lm_eval": sum(min(len(c) + len(k), lm.max_length + 1) - 1 for c, k in enc),
                "tokens_shared_prefix": sum(len(q) for q in pack_requests(enc, groups, lm.max_length)),
            }
        )
    table = Table(title=f"{args.model}: zero-shot scorers, {torch.get_num_threads()} threads, batch {args.batch_size}")
    for c in ("task", "examples", "lm-eval s", "shared-prefix s", "speed-up", "max |Δll|", "same picks", "tokens"):
        table.add_column(c)
    for r in rows:
        table.add_row(
            r["task"],
            str(r["examples"]),
            f"{r['lm_eval_s']:.1f}",
            f"{r['shared_prefix_s']:.1f}",
            f"{r['speedup']:.2f}x",
            f"{r['max_abs_ll_diff']:.1e}",
            "yes" if r["same_picks"] else "NO",
            f"{r['tokens_lm_eval']:,} -> {r['tokens_shared_prefix']:,}",
        )
    total = {s: sum(r[f"{s.replace('-', '_')}_s"] for r in rows) for s in scorers}
    table.add_row(
        "total",
        "",
        f"{total['lm-eval']:.1f}",
        f"{total['shared-prefix']:.1f}",
        f"{total['lm-eval'] / total['shared-prefix']:.2f}x",
        "",
        "",
        "",
    )
    Console().print(table)
    if args.json:
        from llmprune.fsutil import atomic_write_json

        atomic_write_json(args.json, {"model": args.model, "batch_size": args.batch_size, "tasks": rows})


if __name__ == "__main__":
    main()
