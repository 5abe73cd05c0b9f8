"""`llmprune eval MODEL --ppl wikitext2[,ptb] ...`: perplexity (LLM-Pruner / Wanda protocol)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from llmprune.cli.common import split_list, table, write_json
from llmprune.errors import LlmpruneError


def command(
    model: Annotated[str, typer.Argument(help="Hub id, local folder, .gguf file, llmprune folder or smollm2-135m.")],
    ppl: Annotated[str, typer.Option(help="Comma-separated perplexity datasets: wikitext2, ptb.")] = "wikitext2",
    seq_len: Annotated[int, typer.Option(help="Window length in tokens (non-overlapping windows).")] = 128,
    max_windows: Annotated[int | None, typer.Option(help="Score only the first N windows.")] = None,
    batch_size: Annotated[int, typer.Option(help="Windows per forward pass.")] = 4,
    split: Annotated[str, typer.Option(help="Dataset split to score.")] = "test",
    dtype: Annotated[str, typer.Option(help="auto (fp32 on CPU, bf16 on GPU), float32, bfloat16, float16.")] = "auto",
    device: Annotated[str, typer.Option(help="auto, cpu, cuda, cuda:N.")] = "auto",
    json_out: Annotated[Path | None, typer.Option("--json", help="Write results as JSON to this file.")] = None,
) -> None:
    """Evaluate MODEL: perplexity on WikiText-2 / PTB."""
    from llmprune.data import load_text
    from llmprune.eval.ppl import perplexity
    from llmprune.models import count_params, load_model
    from llmprune.models.load import resolve_model_source

    datasets = split_list(ppl)
    if not datasets:
        raise LlmpruneError("nothing to evaluate: pass --ppl wikitext2[,ptb]")
    if seq_len <= 1:
        raise LlmpruneError(f"--seq-len must be > 1 (got {seq_len})")
    t0 = time.perf_counter()
    resolve_model_source(model)  # a bad MODEL fails before any data is read
    texts = {name: load_text(name, split) for name in datasets}  # fail on missing data before loading
    m, tok = load_model(model, dtype=dtype, device=device)
    result: dict = {"model": model, "params": count_params(m), "ppl": {}, "seq_len": seq_len}
    windows = 0
    for name, text in texts.items():
        value, windows = perplexity(m, tok, text, seq_len=seq_len, max_windows=max_windows, batch_size=batch_size)
        result["ppl"][name] = value
    result["windows"] = windows
    result["seconds"] = round(time.perf_counter() - t0, 2)
    table(
        f"{model}  ({result['params']:,} params)",
        ["dataset", "ppl", "seq_len", "windows"],
        [[k, v, seq_len, windows] for k, v in result["ppl"].items()],
    )
    write_json(json_out, result)
