"""The `llmprune` command line. Each subcommand lives in its own module and registers itself here."""

from __future__ import annotations

import importlib
import signal
import sys

import typer

from llmprune import tempfiles
from llmprune.cli import faults
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
    ("llmprune.cli.export_cmd", "export"),
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
    """Entry point: a user error prints one `error:` line and exits 2, a bug exits 3 with its traceback saved
    to a file, an interrupt (Ctrl-C, SIGTERM) exits 128 + the signal; temporaries are removed in every case."""
    tempfiles.install_signal_cleanup()
    code: int | str | None = 0
    try:
        app(args=argv)
    except SystemExit as e:  # typer's own exit (also Ctrl-C: 130)
        code = e.code
    except LlmpruneError as e:
        print(f"error: {e}", file=sys.stderr)
        code = faults.USER_ERROR
    except tempfiles.Interrupted as e:
        print(f"interrupted by {signal.Signals(e.signum).name}", file=sys.stderr)
        code = 128 + e.signum
    except Exception as e:
        message = faults.describe_fault(e)
        if message is not None:
            print(f"error: {message}", file=sys.stderr)
            code = faults.USER_ERROR
        else:
            saved = faults.save_traceback(e)
            where = f"the traceback is in {saved}" if saved else "the traceback could not be saved"
            print(f"internal error: {type(e).__name__}: {e}\n{where}; please report it", file=sys.stderr)
            code = faults.INTERNAL_ERROR
    finally:
        tempfiles.remove_live()  # whatever an interrupted block could not remove itself
    sys.exit(code)
