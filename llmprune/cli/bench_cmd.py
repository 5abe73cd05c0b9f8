"""`llmprune bench MODEL [--baseline OTHER]`: size, memory, prefill latency and decode throughput."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from llmprune.cli.common import Device, Dtype, ModelArg, console, split_list, table, write_json
from llmprune.errors import LlmpruneError
from llmprune.eval.bench_table import bench_rows


def command(
    model: ModelArg,
    baseline: Annotated[
        str | None, typer.Option(help="A second model measured in the same run (interleaved); prints ratios.")
    ] = None,
    device: Device = "cpu",
    dtype: Dtype = "auto",
    prompt_len: Annotated[int, typer.Option(help="Prompt tokens (random ids, same for both models).")] = 128,
    new_tokens: Annotated[int, typer.Option(help="Tokens generated per run (greedy, never stops early).")] = 32,
    batch_sizes: Annotated[str, typer.Option(help="Comma-separated batch sizes.")] = "1,16",
    repeats: Annotated[int, typer.Option(help="Timed runs per model and batch size (median reported).")] = 3,
    memory: Annotated[bool, typer.Option(help="Measure peak memory (CPU: one extra process per model).")] = True,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write results as JSON to this file.")] = None,
) -> None:
    """Benchmark MODEL: parameters, bytes on disk, peak memory, prefill latency, decode tokens/s."""
    from llmprune.eval.bench import BenchConfig, bench

    try:
        sizes = tuple(int(x) for x in split_list(batch_sizes))
    except ValueError as e:
        raise LlmpruneError(f"--batch-sizes must be comma-separated integers, e.g. 1,16 (got {batch_sizes!r})") from e
    cfg = BenchConfig(
        device=device,
        dtype=dtype,
        prompt_len=prompt_len,
        new_tokens=new_tokens,
        batch_sizes=sizes,
        repeats=repeats,
        memory=memory,
    )
    cfg.validate()
    if json_out is not None:
        from llmprune.fsutil import check_writable_parent

        check_writable_parent(json_out)
    result = bench(model, baseline, cfg)
    columns = ["", model] + ([baseline, "model / baseline"] if baseline else [])
    threads = result["threads"]
    title = f"bench: {result['device_name']}, {threads} thread{'s' * (threads != 1)}, {result['config']['dtype']}"
    table(title, columns, bench_rows(result))
    console.print(
        f"median of {repeats} runs, prompt {prompt_len} tokens, {new_tokens} new tokens; {result['seconds']:.0f} s"
    )
    write_json(json_out, result)
