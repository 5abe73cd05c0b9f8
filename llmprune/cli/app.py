"""The `llmprune` command line. Each subcommand lives in its own module and registers itself here."""

from __future__ import annotations

import importlib
import sys

import typer

from llmprune.errors import LlmpruneError

app = typer.Typer(
    name="llmprune",
    help="Structural pruning for Hugging Face causal LMs: inspect, prune, recover, evaluate.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# (module, command name): explicit registry, in the order `--help` lists them.
COMMANDS: list[tuple[str, str]] = [
    ("llmprune.cli.prune_cmd", "prune"),
    ("llmprune.cli.run_cmd", "run"),
    ("llmprune.cli.recover_cmd", "recover"),
    ("llmprune.cli.merge_cmd", "merge"),
    ("llmprune.cli.eval_cmd", "eval"),
    ("llmprune.cli.groups_cmd", "groups"),
    ("llmprune.cli.bench_cmd", "bench"),
    ("llmprune.cli.report_cmd", "report"),
    ("llmprune.cli.sparsify_cmd", "sparsify"),
]


def _register() -> None:
    for module, name in COMMANDS:
        mod = importlib.import_module(module)
        app.command(name=name)(mod.command)


_register()


@app.callback()
def _root() -> None:
    """Structural pruning for Hugging Face causal LMs: inspect, prune, recover, evaluate."""


def main(argv: list[str] | None = None) -> None:
    """Entry point: user errors print one line and exit 2, never a traceback."""
    try:
        app(args=argv)
    except LlmpruneError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
