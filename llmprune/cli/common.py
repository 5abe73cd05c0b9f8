"""Helpers shared by CLI commands: option types, list parsing, JSON output, tables."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from llmprune.fsutil import atomic_write_json

console = Console(stderr=True)

# Arguments and options that several commands take (same name, same meaning, same help).
ModelArg = Annotated[str, typer.Argument(help="Hub id, local folder, .gguf file, llmprune folder or smollm2-135m.")]
Dtype = Annotated[str, typer.Option(help="auto (fp32 on CPU, bf16 on GPU), float32, bfloat16, float16.")]
Device = Annotated[str, typer.Option(help="auto, cpu, cuda, cuda:N.")]
CalibSource = Annotated[
    str, typer.Option("--calib", help="Calibration source: c4, wikitext2 (valid), alpaca, or a file.")
]
CalibSamples = Annotated[int, typer.Option("--samples", help="Calibration windows.")]
CalibSeqLen = Annotated[int, typer.Option("--seq-len", help="Tokens per calibration window.")]
CalibSeed = Annotated[int, typer.Option("--seed", help="Seed of the calibration window sampling.")]


def split_list(value: str | None) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()] if value else []


def write_json(path: Path | None, obj: Any) -> None:
    """Write machine-readable output atomically; print it to stdout when no path is given."""
    if path is None:
        return
    atomic_write_json(path, obj)
    console.print(f"wrote {path}")


def print_json(obj: Any) -> None:
    print(json.dumps(obj, indent=2))


def table(title: str, columns: list[str], rows: list[list[Any]]) -> None:
    t = Table(title=title)
    for c in columns:
        t.add_column(c)
    for r in rows:
        t.add_row(*[f"{v:.4g}" if isinstance(v, float) else str(v) for v in r])
    Console().print(t)


def print_summary(report: dict, out: Path) -> None:
    """Human summary of a prune/run report: parameters and the before/after(/recovered) metrics."""
    rec = report.get("recovered")
    rows = [
        ["parameters", f"{report.get('params_before', 0):,}", f"{report.get('params_after', 0):,}"],
        ["removed", "", f"{report.get('ratio_removed', 0):.2%}"],
    ]
    before, after = report.get("before", {}), report.get("after", {})
    for name, value in after.get("ppl", {}).items():
        rows.append([f"ppl {name}", before.get("ppl", {}).get(name, ""), value])
    if "mean_acc" in after:
        rows.append(["mean acc", before.get("mean_acc", ""), after["mean_acc"]])
    columns = ["", "before", "after"]
    if rec is not None:
        columns.append("recovered")
        for r in rows:
            r.append(rec.get("ppl", {}).get(r[0][4:], "") if r[0].startswith("ppl ") else "")
        if "mean_acc" in after:
            rows[-1][-1] = rec.get("mean_acc", "")
    table(f"{out}  ({report.get('seconds', 0):.1f} s pruning)", columns, rows)
