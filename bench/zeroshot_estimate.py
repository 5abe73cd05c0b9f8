"""How long would full-set zero-shot evaluation take? Time a subset of each task, extrapolate.

    OMP_NUM_THREADS=1 python bench/zeroshot_estimate.py --model smollm2-135m --limit 20
    python bench/zeroshot_estimate.py --model runs/s20 --tasks boolq,piqa --limit 50 --json est.json

For each task, `--limit` examples spread evenly through the file are scored exactly as `llmprune eval
--tasks [--scorer S]` scores them (lm-eval's tokens, the model in memory), after one warm-up example. The full-set
time is extrapolated two ways: seconds per example x examples, and seconds per token x the tokens of
all the task's (context, continuation) requests; the token-based figure accounts for long and short
examples and is the estimate. Prints a table and, with --json, writes the figures.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace

import torch


def _tokens(tok, task) -> int:
    return sum(len(tok(ctx + cont).input_ids) for ex in task.examples for ctx, cont in ex.requests)


def spread(task, limit: int):
    """`task` with `limit` examples taken evenly through the file (first, ..., last)."""
    n = len(task.examples)
    if limit >= n:
        return task
    picks = sorted({round(i * (n - 1) / max(limit - 1, 1)) for i in range(limit)})
    return replace(task, examples=tuple(task.examples[i] for i in picks))


def parser(doc: str, *, limit: int, batch_size: int) -> argparse.ArgumentParser:
    """The options the zero-shot bench scripts share."""
    p = argparse.ArgumentParser(description=doc.splitlines()[0])
    p.add_argument("--model", default="smollm2-135m")
    p.add_argument("--tasks", default="boolq,piqa,hellaswag,arc_easy")
    p.add_argument("--limit", type=int, default=limit, help="examples per task")
    p.add_argument("--batch-size", type=int, default=batch_size)
    p.add_argument("--dtype", default="auto")
    p.add_argument("--device", default="auto")
    p.add_argument("--json", default=None, help="write the figures to this file")
    return p


def load(args):
    """(tasks, model, tokenizer, lm-eval HFLM) from the shared options."""
    from llmprune.eval.harness import make_lm
    from llmprune.eval.zeroshot import load_tasks
    from llmprune.models import load_model

    tasks = load_tasks([t.strip() for t in args.tasks.split(",") if t.strip()])
    model, tok = load_model(args.model, dtype=args.dtype, device=args.device)
    return tasks, model, tok, make_lm(model, tok, batch_size=args.batch_size)


def main() -> None:
    p = parser(__doc__, limit=20, batch_size=4)
    p.add_argument("--scorer", default="shared-prefix", help="shared-prefix or lm-eval (as llmprune eval --scorer)")
    args = p.parse_args()

    from rich.console import Console
    from rich.table import Table

    from llmprune.eval.zeroshot import evaluate_task

    tasks, model, tok, lm = load(args)
    evaluate_task(lm, spread(tasks[0], 1), progress=False, scorer=args.scorer)  # warm-up: lazy imports, kernels
    rows, total_est, total_naive = [], 0.0, 0.0
    for task in tasks:
        sub = spread(task, args.limit)
        t0 = time.perf_counter()
        res = evaluate_task(lm, sub, progress=False, scorer=args.scorer, batch_size=args.batch_size)
        secs = time.perf_counter() - t0
        sub_tokens, all_tokens = _tokens(tok, sub), _tokens(tok, task)
        naive = secs / len(sub.examples) * task.total
        est = secs * all_tokens / sub_tokens
        total_est += est
        total_naive += naive
        rows.append(
            {
                "task": task.name,
                "examples": task.total,
                "timed": len(sub.examples),
                "seconds": round(secs, 2),
                "s_per_example": round(secs / len(sub.examples), 4),
                "tokens_timed": sub_tokens,
                "tokens_all": all_tokens,
                "estimate_by_examples_s": round(naive, 1),
                "estimate_s": round(est, 1),
                "subset_acc": res.acc,
            }
        )
    table = Table(
        title=f"{args.model}: zero-shot full-set time estimate ({args.scorer}, {torch.get_num_threads()} threads)"
    )
    for c in ("task", "examples", "timed", "s", "s/example", "est. by examples", "estimate (by tokens)"):
        table.add_column(c)
    for r in rows:
        table.add_row(
            r["task"],
            f"{r['examples']:,}",
            str(r["timed"]),
            f"{r['seconds']:.1f}",
            f"{r['s_per_example']:.3f}",
            f"{r['estimate_by_examples_s'] / 60:.1f} min",
            f"{r['estimate_s'] / 60:.1f} min",
        )
    table.add_row("total", "", "", "", "", f"{total_naive / 60:.1f} min", f"{total_est / 60:.1f} min")
    Console().print(table)
    if args.json:
        from llmprune.fsutil import atomic_write_json

        out = {
            "model": args.model,
            "scorer": args.scorer,
            "threads": torch.get_num_threads(),
            "tasks": rows,
            "estimate_s": total_est,
        }
        atomic_write_json(args.json, out)


if __name__ == "__main__":
    main()
