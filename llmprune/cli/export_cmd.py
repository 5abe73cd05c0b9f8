"""`llmprune export MODEL --format gguf --out FILE.gguf [--outtype f32|f16|bf16|q8_0]`: a GGUF file for llama.cpp."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from llmprune.cli.common import ModelArg

FORMATS = ("gguf",)


def command(
    model: ModelArg,
    out: Annotated[Path, typer.Option(help="The GGUF file to write (replaces only a GGUF llmprune wrote).")],
    format: Annotated[
        str, typer.Option("--format", help="Output format; gguf (llama.cpp) is the one there is.")
    ] = "gguf",
    outtype: Annotated[
        str, typer.Option(help="Weight type: f32, f16, bf16 or q8_0 (norms and biases stay f32).")
    ] = "f32",
) -> None:
    """Export MODEL for llama.cpp: uniform widths as the family's architecture, per-layer widths as `deci`."""
    from llmprune.cli.common import console
    from llmprune.errors import LlmpruneError
    from llmprune.ggufio.writer import check_outtype, export_gguf

    if format not in FORMATS:
        raise LlmpruneError(f"unknown --format {format!r}; choose one of {', '.join(FORMATS)}")
    check_outtype(outtype)
    done = export_gguf(model, out, outtype=outtype)
    size = done.path.stat().st_size / 1e6
    console.print(
        f"exported {model} as {done.arch} ({done.outtype}, {done.tensors} tensors, {size:.1f} MB; "
        f"tokenizer {done.tokenizer}) -> {done.path}"
    )
