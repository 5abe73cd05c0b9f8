"""`llmprune eval MODEL [--ppl wikitext2[,ptb]] [--tasks boolq,piqa,...]`: perplexity and zero-shot accuracy.

Every evaluation option fills a field of `EvalConfig` (its default and help are that field's), the
same settings recipes use.
"""

from __future__ import annotations

import time
from pathlib import Path

from llmprune.cli.common import (
    SHARED_HELP,
    Device,
    Dtype,
    JsonOut,
    ModelArg,
    build_config,
    option,
    split_list,
    table,
    write_json,
)
from llmprune.eval.config import EvalConfig


def command(
    model: ModelArg,
    ppl: str | None = option(
        EvalConfig,
        "ppl",
        default=None,
        help="comma-separated perplexity datasets: wikitext2, ptb; 'none' to skip. "
        "Default: wikitext2, or none when --tasks is given",
    ),
    tasks: str | None = option(
        EvalConfig, "tasks", default=None, help="comma-separated " + EvalConfig.model_fields["tasks"].description
    ),
    limit: int | None = option(EvalConfig, "limit"),
    seq_len: int = option(EvalConfig, "seq_len", help=SHARED_HELP["--seq-len"]),
    max_windows: int | None = option(EvalConfig, "max_windows"),
    batch_size: int = option(EvalConfig, "batch_size", help=SHARED_HELP["--batch-size"]),
    scorer: str = option(EvalConfig, "scorer"),
    split: str = option(EvalConfig, "split"),
    cache: Path | None = option(EvalConfig, "cache"),
    dtype: Dtype = "auto",
    device: Device = "auto",
    json_out: JsonOut = None,
) -> None:
    """Evaluate MODEL: perplexity on WikiText-2 / PTB and zero-shot multiple-choice accuracy (lm-eval)."""
    from llmprune.data import load_text
    from llmprune.eval.evaluate import evaluate
    from llmprune.eval.zeroshot import load_tasks
    from llmprune.models.load import load_model, resolve_model_source
    from llmprune.models.params import count_params

    task_specs = split_list(tasks)
    if ppl is None:
        ppl = "" if task_specs else "wikitext2"
    cfg = build_config(
        EvalConfig,
        {
            "ppl": [d for d in split_list(ppl) if d.lower() != "none"],
            "tasks": task_specs,
            "limit": limit,
            "seq_len": seq_len,
            "max_windows": max_windows,
            "batch_size": batch_size,
            "scorer": scorer,
            "split": split,
            "cache": str(cache) if cache is not None else None,
        },
        flags={(): "--ppl/--tasks"},
    )
    if cfg.cache is not None:
        from llmprune.eval.cache import check_cache_file

        check_cache_file(Path(cfg.cache))
    if json_out is not None:
        from llmprune.fsutil import check_writable_parent

        check_writable_parent(json_out)
    t0 = time.perf_counter()
    resolve_model_source(model)  # a bad MODEL fails before any data is read
    for name in cfg.ppl:  # fail on missing data / bad task files before loading the model
        load_text(name, cfg.split)
    loaded = load_tasks(cfg.tasks, limit=cfg.limit)
    m, tok = load_model(model, dtype=dtype, device=device)
    result: dict = {"model": model, "params": count_params(m)}
    result.update(evaluate(m, tok, cfg, loaded_tasks=loaded))
    result["seconds"] = round(time.perf_counter() - t0, 2)
    title = f"{model}  ({result['params']:,} params)"
    if "ppl" in result:
        table(
            title,
            ["dataset", "ppl", "seq_len", "windows"],
            [[k, v, cfg.seq_len, result["windows"]] for k, v in result["ppl"].items()],
        )
    if "tasks" in result:
        rows = [
            [k, v["acc"], v["acc_norm"], f"{v['n']}/{v['total']}", v["seconds"]] for k, v in result["tasks"].items()
        ]
        rows.append(["mean", result["mean_acc"], result["mean_acc_norm"], "", ""])
        table(f"{title}  zero-shot", ["task", "acc", "acc_norm", "examples", "seconds"], rows)
    write_json(json_out, result)
