"""`llmprune eval MODEL [--ppl wikitext2[,ptb]] [--tasks boolq,piqa,...]`: perplexity and zero-shot accuracy."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from llmprune.cli.common import Device, Dtype, ModelArg, split_list, table, write_json
from llmprune.errors import LlmpruneError


def command(
    model: ModelArg,
    ppl: Annotated[
        str | None,
        typer.Option(
            help="Comma-separated perplexity datasets: wikitext2, ptb; 'none' to skip. Default: wikitext2, "
            "or none when --tasks is given."
        ),
    ] = None,
    tasks: Annotated[
        str | None,
        typer.Option(
            help="Comma-separated zero-shot tasks: names in $LLMPRUNE_DATA_DIR/tasks (boolq, piqa, "
            "hellaswag, arc_easy, ...) or paths to .jsonl task files."
        ),
    ] = None,
    limit: Annotated[int | None, typer.Option(help="Zero-shot: score only the first N examples of each task.")] = None,
    seq_len: Annotated[int, typer.Option(help="Window length in tokens (non-overlapping windows).")] = 128,
    max_windows: Annotated[int | None, typer.Option(help="Score only the first N windows.")] = None,
    batch_size: Annotated[
        int,
        typer.Option(
            help="Windows / zero-shot sequences (packed examples, or requests with --scorer lm-eval) per forward pass."
        ),
    ] = 4,
    scorer: Annotated[
        str,
        typer.Option(
            help="Zero-shot scorer: shared-prefix (each context once, choices packed behind it; lm-eval's "
            "tokens and numbers) or lm-eval (HFLM's own per-request loop)."
        ),
    ] = "shared-prefix",
    split: Annotated[str, typer.Option(help="Dataset split to score.")] = "test",
    cache: Annotated[
        Path | None,
        typer.Option(
            help="Zero-shot: keep every scored example in this JSON Lines file; rerun the same command to "
            "resume an interrupted run (only the missing examples are scored)."
        ),
    ] = None,
    dtype: Dtype = "auto",
    device: Device = "auto",
    json_out: Annotated[Path | None, typer.Option("--json", help="Write results as JSON to this file.")] = None,
) -> None:
    """Evaluate MODEL: perplexity on WikiText-2 / PTB and zero-shot multiple-choice accuracy (lm-eval)."""
    from llmprune.data import load_text
    from llmprune.eval.evaluate import evaluate
    from llmprune.eval.zeroshot import load_tasks
    from llmprune.models import count_params, load_model
    from llmprune.models.load import resolve_model_source

    task_specs = split_list(tasks)
    if ppl is None:
        ppl = "" if task_specs else "wikitext2"
    datasets = [d for d in split_list(ppl) if d.lower() != "none"]
    if not datasets and not task_specs:
        raise LlmpruneError("nothing to evaluate: pass --ppl wikitext2[,ptb] and/or --tasks boolq,piqa,...")
    if seq_len <= 1:
        raise LlmpruneError(f"--seq-len must be > 1 (got {seq_len})")
    if batch_size < 1:
        raise LlmpruneError(f"--batch-size must be >= 1 (got {batch_size})")
    from llmprune.eval.zeroshot import check_scorer

    check_scorer(scorer)
    if cache is not None:
        from llmprune.eval.cache import check_cache_file

        check_cache_file(cache)
    if json_out is not None:
        from llmprune.fsutil import check_writable_parent

        check_writable_parent(json_out)
    t0 = time.perf_counter()
    resolve_model_source(model)  # a bad MODEL fails before any data is read
    for name in datasets:  # fail on missing data / bad task files before loading the model
        load_text(name, split)
    loaded = load_tasks(task_specs, limit=limit)
    m, tok = load_model(model, dtype=dtype, device=device)
    result: dict = {"model": model, "params": count_params(m)}
    result.update(
        evaluate(
            m,
            tok,
            ppl=datasets,
            seq_len=seq_len,
            max_windows=max_windows,
            tasks=loaded,
            limit=limit,
            batch_size=batch_size,
            scorer=scorer,
            cache=cache,
            split=split,
        )
    )
    result["seconds"] = round(time.perf_counter() - t0, 2)
    title = f"{model}  ({result['params']:,} params)"
    if "ppl" in result:
        table(
            title,
            ["dataset", "ppl", "seq_len", "windows"],
            [[k, v, seq_len, result["windows"]] for k, v in result["ppl"].items()],
        )
    if "tasks" in result:
        rows = [
            [k, v["acc"], v["acc_norm"], f"{v['n']}/{v['total']}", v["seconds"]] for k, v in result["tasks"].items()
        ]
        rows.append(["mean", result["mean_acc"], result["mean_acc_norm"], "", ""])
        table(f"{title}  zero-shot", ["task", "acc", "acc_norm", "examples", "seconds"], rows)
    write_json(json_out, result)
