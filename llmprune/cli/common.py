"""Helpers shared by CLI commands: options derived from the config fields, list parsing, JSON output, tables.

An option's default and help come from the pydantic config it fills (`option(PruneConfig, "ratio")`),
so the CLI never restates a default; errors name the option (`--ratio: ...`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from pydantic import BaseModel
from rich.console import Console
from rich.table import Table

from llmprune.errors import as_option, validate_config
from llmprune.fsutil import atomic_write_json
from llmprune.recipes import Recipe

console = Console(stderr=True)
T = TypeVar("T", bound=BaseModel)


def _help(text: str | None) -> str:
    text = (text or "").strip()
    return text[:1].upper() + text[1:] + ("" if not text or text.endswith(".") else ".")


def field_default(cfg: type[BaseModel], field: str) -> Any:
    """The default of a config field (list defaults as comma-separated text, as the CLI takes them)."""
    default = cfg.model_fields[field].get_default(call_default_factory=True)
    return ",".join(map(str, default)) if isinstance(default, (list, tuple)) else default


def option(cfg: type[BaseModel], field: str, *decls: str, default: Any = ..., help: str | None = None) -> Any:
    """A typer option whose default and help are those of `cfg`'s field `field` (one definition of both)."""
    value = field_default(cfg, field) if default is ... else default
    return typer.Option(value, *decls, help=_help(help or cfg.model_fields[field].description))


def build_config(cfg: type[T], data: dict, *, flags: Mapping[tuple, str] | None = None) -> T:
    """Validate command-line values into `cfg`; an error names the option (`--samples: ...`, with the value)."""
    flags = flags or {}

    def name(loc: Sequence[Any]) -> str:
        if not loc:  # a check across several fields
            return flags.get((), "options")
        return next((flag for key, flag in flags.items() if key and tuple(loc[: len(key)]) == key), as_option(loc))

    return validate_config(cfg, data, what="options", name=name, show_input=True)


# Arguments and options that several commands take: one name, one meaning, one help (tests/cli/test_vocabulary.py).
ModelArg = Annotated[str, typer.Argument(help="Hub id, local folder, .gguf file, llmprune folder or smollm2-135m.")]
Dtype = Annotated[str, typer.Option(help=_help(Recipe.model_fields["dtype"].description))]
Device = Annotated[str, typer.Option(help=_help(Recipe.model_fields["device"].description))]
JsonOut = Annotated[Path | None, typer.Option("--json", help="Also write the results as JSON to this file.")]
# The help of shared options whose config fields live in different configs: one text for every command.
SHARED_HELP = {
    "--seed": "seed of everything random the command does (prune, sparsify: the calibration windows; "
    "recover: data order, LoRA init, dropout)",
    "--seq-len": "tokens per window (prune, sparsify: calibration windows; eval: perplexity windows)",
    "--batch-size": "sequences per batch (eval: windows or zero-shot requests per forward pass; recover: rows per "
    "optimizer step, all processes together, run in passes of --micro-batch-size; default from --preset)",
}
# Shared options whose default is the command's reference method's, on purpose, and why.
COMMAND_DEFAULTS = {
    "--calib": "calibration of the command's method: LLM-Pruner (prune) or Wanda (sparsify)",
    "--samples": "calibration of the command's method: LLM-Pruner (prune) or Wanda (sparsify)",
    "--seq-len": "windows of the command's method: LLM-Pruner calibration (prune), Wanda (sparsify), perplexity (eval)",
    "--seed": "LLM-Pruner's recovery seed (recover: 42); calibration windows: 0",
    "--batch-size": "recover: from --preset (cpu 4, gpu 64 rows); eval: 8 windows",
}
# Shared options whose help names what the command writes there (one meaning: the command's output folder).
OWN_HELP = {"--out"}
CALIB_FLAGS = {("calib", "source"): "--calib", ("calib", "samples"): "--samples", ("calib", "seq_len"): "--seq-len"}
CALIB_FLAGS |= {("calib", "seed"): "--seed"}


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
