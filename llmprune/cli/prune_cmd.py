"""`llmprune prune MODEL --ratio R ... --out DIR`: structured pruning to a smaller dense model.

Every option fills a field of `PruneConfig` (its default and help are that field's); the command runs
the recipe those options describe.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from llmprune.cli.common import CALIB_FLAGS, SHARED_HELP, Device, Dtype, ModelArg, build_config, option, print_summary
from llmprune.data.config import CalibConfig
from llmprune.prune.config import PruneConfig

CALIB = PruneConfig().calib
RECONSTRUCT = PruneConfig().reconstruct_calib
SEQUENTIAL = PruneConfig().sequential_calib


def command(
    model: ModelArg,
    out: Annotated[Path, typer.Option(help="Output folder for the pruned model, plan.json and report.json.")],
    ratio: float = option(PruneConfig, "ratio"),
    scope: str = option(PruneConfig, "scope"),
    importance: str = option(PruneConfig, "importance"),
    aggregate: str = option(PruneConfig, "aggregate"),
    layers: str | None = option(PruneConfig, "layers"),
    ranking: str = option(PruneConfig, "ranking"),
    calib: str = option(CalibConfig, "source", "--calib", default=CALIB.source),
    samples: int = option(CalibConfig, "samples", "--samples", default=CALIB.samples),
    seq_len: int = option(CalibConfig, "seq_len", "--seq-len", default=CALIB.seq_len, help=SHARED_HELP["--seq-len"]),
    seed: int = option(CalibConfig, "seed", "--seed", default=CALIB.seed, help=SHARED_HELP["--seed"]),
    round_to: int = option(PruneConfig, "round_to"),
    uniform: bool = option(PruneConfig, "uniform"),
    reconstruct: bool = option(PruneConfig, "reconstruct"),
    reconstruct_samples: int = option(
        CalibConfig, "samples", default=RECONSTRUCT.samples, help=f"windows of {RECONSTRUCT.seq_len} tokens to refit on"
    ),
    heads: bool = option(PruneConfig, "prune_heads", "--heads/--no-heads"),
    engine: str = option(PruneConfig, "engine"),
    allocation: str = option(PruneConfig, "allocation"),
    compensate: str = option(PruneConfig, "compensate"),
    bias: bool = option(PruneConfig, "bias", "--bias/--no-bias"),
    offload: bool | None = option(PruneConfig, "offload", "--offload/--no-offload"),
    sequential_samples: int = option(
        CalibConfig, "samples", default=SEQUENTIAL.samples, help=f"sequential: windows of {SEQUENTIAL.seq_len} tokens"
    ),
    dtype: Dtype = "auto",
    device: Device = "auto",
) -> None:
    """Prune MODEL structurally and save a smaller dense model to --out."""
    from llmprune.jobs import check_layer_range, run_recipe
    from llmprune.recipes import recipe_from_dict

    calib_cfg = {"source": calib, "samples": samples, "seq_len": seq_len, "seed": seed}
    prune = build_config(
        PruneConfig,
        {
            "ratio": ratio,
            "scope": scope,
            "importance": importance,
            "aggregate": aggregate,
            "layers": layers,
            "ranking": ranking,
            "round_to": round_to,
            "uniform": uniform,
            "prune_heads": heads,
            "calib": calib_cfg,
            "reconstruct": reconstruct,
            "reconstruct_calib": {
                "source": calib,
                "samples": reconstruct_samples,
                "seq_len": RECONSTRUCT.seq_len,
                "seed": seed + 1,
            },
            "engine": engine,
            "allocation": allocation,
            "compensate": compensate,
            "bias": bias,
            "offload": offload,
            "sequential_calib": {**calib_cfg, "samples": sequential_samples, "seq_len": SEQUENTIAL.seq_len},
        },
        flags=CALIB_FLAGS
        | {("reconstruct_calib",): "--reconstruct-samples", ("sequential_calib",): "--sequential-samples"},
    )
    check_layer_range(model, prune.layers, "--layers")  # from config.json, before the model loads
    recipe = recipe_from_dict(
        {"name": out.name, "model": model, "dtype": dtype, "device": device, "prune": prune.model_dump()},
        source="options",
    )
    print_summary(run_recipe(recipe, out), out)
