"""`llmprune bench MODEL [--baseline OTHER]`: size, memory, prefill latency and decode throughput.

Every measurement option fills a field of `llmprune.perf.config.BenchConfig` (default and help are that field's).
"""

from __future__ import annotations

from typing import Annotated

import typer

from llmprune.cli.common import JsonOut, ModelArg, build_config, console, option, split_list, table, write_json
from llmprune.errors import LlmpruneError
from llmprune.perf.config import BenchConfig
from llmprune.perf.table import bench_rows


def command(
    model: ModelArg,
    baseline: Annotated[
        str | None, typer.Option(help="A second model measured in the same run (interleaved); prints ratios.")
    ] = None,
    device: str = option(BenchConfig, "device"),
    dtype: str = option(BenchConfig, "dtype"),
    prompt_len: int = option(BenchConfig, "prompt_len"),
    new_tokens: int = option(BenchConfig, "new_tokens"),
    batch_sizes: str = option(BenchConfig, "batch_sizes", help="comma-separated batch sizes"),
    repeats: int = option(BenchConfig, "repeats"),
    memory: bool = option(BenchConfig, "memory"),
    json_out: JsonOut = None,
) -> None:
    """Benchmark MODEL: parameters, bytes on disk, peak memory, prefill latency, decode tokens/s."""
    from llmprune.perf.bench import bench

    try:
        sizes = tuple(int(x) for x in split_list(batch_sizes))
    except ValueError as e:
        raise LlmpruneError(f"--batch-sizes must be comma-separated integers, e.g. 1,16 (got {batch_sizes!r})") from e
    cfg = build_config(
        BenchConfig,
        {
            "device": device,
            "dtype": dtype,
            "prompt_len": prompt_len,
            "new_tokens": new_tokens,
            "batch_sizes": sizes,
            "repeats": repeats,
            "memory": memory,
        },
    )
    if json_out is not None:
        from llmprune.fsutil import check_writable_parent

        check_writable_parent(json_out)
    result = bench(model, baseline, cfg)
    columns = ["", model] + ([baseline, "model / baseline"] if baseline else [])
    threads = result["threads"]
    title = f"bench: {result['device_name']}, {threads} thread{'s' * (threads != 1)}, {result['config']['dtype']}"
    table(title, columns, bench_rows(result))
    console.print(
        f"median of {cfg.repeats} runs, prompt {cfg.prompt_len} tokens, {cfg.new_tokens} new tokens; decode tokens/s "
        "at batch B counts the tokens of all B sequences; "
        f"{result['seconds']:.0f} s"
    )
    write_json(json_out, result)
