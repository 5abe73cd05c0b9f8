"""`llmprune run RECIPE [--set key=value]... [--out DIR]`: the whole job a recipe describes."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from llmprune.cli.common import print_summary


def command(
    recipe: Annotated[Path, typer.Argument(help="Recipe YAML file (see recipes/).")],
    set_: Annotated[
        list[str] | None, typer.Option("--set", help="Override a field: --set prune.ratio=0.3 (repeatable).")
    ] = None,
    out: Annotated[Path | None, typer.Option(help="Output folder (default: runs/<recipe name>).")] = None,
) -> None:
    """Run RECIPE: prune, and evaluate / recover / merge when the recipe says so."""
    from llmprune.jobs import run_recipe
    from llmprune.recipes import load_recipe

    r = load_recipe(recipe, set_ or [])
    out = out or Path("runs") / (r.name or recipe.stem)
    print_summary(run_recipe(r, out), out)
