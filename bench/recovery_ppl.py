"""Does recovery help? WikiText-2 perplexity of a pruned model before and after a bounded LoRA run.

    python bench/recovery_ppl.py runs/s20 --data c4 --steps 16 --cutoff 128 --lr 4e-4 --out runs/s20-ce
    python bench/recovery_ppl.py runs/s20 --data c4 --steps 16 --cutoff 128 --lr 4e-4 \\
        --teacher smollm2-135m --kd-weight 0.5 --out runs/s20-kd

Trains an adapter with `recover` (batch = micro-batch = --batch-size rows), merges it, and measures
perplexity with the LLM-Pruner protocol (seq 128, first --windows windows of the test split). With
--baseline the unrecovered model is measured too. Prints one JSON line with the numbers and times.
"""

from __future__ import annotations

import argparse
import json
import time

from llmprune.eval.evaluate import evaluate
from llmprune.models import load_model
from llmprune.recovery import merge_lora, recover


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("pruned")
    ap.add_argument("--out", required=True, help="adapter folder")
    ap.add_argument("--data", default="c4")
    ap.add_argument("--steps", type=int, default=16)
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--cutoff", type=int, default=128)
    ap.add_argument("--lr", type=float, default=4e-4)
    ap.add_argument("--warmup-steps", type=int, default=2)
    ap.add_argument("--teacher", default=None)
    ap.add_argument("--kd-weight", type=float, default=0.5)
    ap.add_argument("--kd-temperature", type=float, default=1.0)
    ap.add_argument("--kd-topk", type=int, default=None)
    ap.add_argument("--seed", type=int, default=42, help="seed of data order, LoRA init and dropout")
    ap.add_argument("--windows", type=int, default=256)
    ap.add_argument("--baseline", action="store_true", help="also measure the unrecovered model")
    args = ap.parse_args()

    model, tok = load_model(args.pruned, dtype="float32", device="cpu")
    result: dict = {"pruned": args.pruned, "args": vars(args)}

    def ppl() -> float:
        return evaluate(model, tok, ppl=["wikitext2"], seq_len=128, max_windows=args.windows, batch_size=8)["ppl"][
            "wikitext2"
        ]

    if args.baseline:
        t = time.perf_counter()
        result["ppl_unrecovered"] = ppl()
        result["eval_seconds"] = round(time.perf_counter() - t, 1)
    cfg = {
        "data": args.data,
        "steps": args.steps,
        "batch_size": args.batch_size,
        "micro_batch_size": args.batch_size,
        "cutoff": args.cutoff,
        "lr": args.lr,
        "warmup_steps": args.warmup_steps,
        "save_every": 0,
        "teacher": args.teacher,
        "kd_weight": args.kd_weight,
        "kd_temperature": args.kd_temperature,
        "kd_topk": args.kd_topk,
        "seed": args.seed,
    }
    t = time.perf_counter()
    stats = recover(model, tok, cfg, args.out)
    result["train_seconds"] = round(time.perf_counter() - t, 1)
    result["tokens"] = stats["tokens"]
    result["tokens_per_s"] = stats["tokens_per_s"]
    result["loss_first_last"] = [stats["loss_first"], stats["loss_last"]]
    model = merge_lora(model, args.out)
    t = time.perf_counter()
    result["ppl_recovered"] = ppl()
    result["recovered_eval_seconds"] = round(time.perf_counter() - t, 1)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
