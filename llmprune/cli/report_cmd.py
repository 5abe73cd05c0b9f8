"""`llmprune report RUN_DIR [--out DIR]`: report.md with tables and PNG plots of a pruning run."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from llmprune.cli.common import console


def command(
    run_dir: Annotated[Path, typer.Argument(help="A run folder: the --out of `llmprune run` or `llmprune prune`.")],
    out: Annotated[Path | None, typer.Option(help="Output folder (default: RUN_DIR/report).")] = None,
) -> None:
    """Write report.md and PNG plots (kept widths, importance per layer, before/after metrics) for RUN_DIR."""
    from llmprune.report import write_report

    md = write_report(run_dir, out)
    console.print(f"wrote {md}")
    for png in sorted(md.parent.glob("*.png")):
        console.print(f"wrote {png}")
