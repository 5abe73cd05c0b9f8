"""`llmprune prune MODEL --ratio R ... --out DIR`: structured pruning to a smaller dense model."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from llmprune.cli.common import (
    CalibSamples,
    CalibSeed,
    CalibSeqLen,
    CalibSource,
    Device,
    Dtype,
    ModelArg,
    print_summary,
)


def command(
    model: ModelArg,
    out: Annotated[Path, typer.Option(help="Output folder for the pruned model, plan.json and report.json.")],
    ratio: Annotated[float, typer.Option(help="Fraction of all parameters to remove, in (0, 1).")] = 0.2,
    scope: Annotated[str, typer.Option(help="block (heads + MLP), channel (hidden size) or layer.")] = "block",
    importance: Annotated[
        str, typer.Option(help="element1, element2, vector, magnitude, l2, random, activation.")
    ] = "element1",
    aggregate: Annotated[str, typer.Option(help="Group aggregation: sum, mean, max, prod, last.")] = "sum",
    layers: Annotated[str | None, typer.Option(help="Inclusive layer range A-B to prune (default: all).")] = None,
    ranking: Annotated[str, typer.Option(help="global (across layers) or layer (same fraction per layer).")] = "global",
    calib: CalibSource = "wikitext2",
    samples: CalibSamples = 10,
    seq_len: CalibSeqLen = 64,
    seed: CalibSeed = 0,
    round_to: Annotated[int, typer.Option(help="Round kept widths to a multiple of this.")] = 1,
    uniform: Annotated[bool, typer.Option(help="Same shape in every layer (stock transformers can load it).")] = False,
    reconstruct: Annotated[
        bool, typer.Option(help="Refit o_proj/down_proj on calibration activations after removing units.")
    ] = True,
    reconstruct_samples: Annotated[int, typer.Option(help="Windows (of 128 tokens) for reconstruction.")] = 64,
    no_heads: Annotated[bool, typer.Option("--no-heads", help="Block scope: keep every attention head.")] = False,
    dtype: Dtype = "auto",
    device: Device = "auto",
) -> None:
    """Prune MODEL structurally and save a smaller dense model to --out."""
    from llmprune.jobs import run_recipe
    from llmprune.recipes import recipe_from_dict

    recipe = recipe_from_dict(
        {
            "name": out.name,
            "model": model,
            "dtype": dtype,
            "device": device,
            "prune": {
                "ratio": ratio,
                "scope": scope,
                "importance": importance,
                "aggregate": aggregate,
                "layers": layers,
                "ranking": ranking,
                "round_to": round_to,
                "uniform": uniform,
                "prune_heads": not no_heads,
                "calib": {"source": calib, "samples": samples, "seq_len": seq_len, "seed": seed},
                "reconstruct": reconstruct,
                "reconstruct_calib": {
                    "source": calib,
                    "samples": reconstruct_samples,
                    "seq_len": 128,
                    "seed": seed + 1,
                },
            },
        },
        source="options",
    )
    print_summary(run_recipe(recipe, out), out)
