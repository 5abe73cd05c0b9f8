"""`llmprune sparsify MODEL --method magnitude|wanda|global-magnitude --sparsity S [--pattern N:M] --out DIR`.

Unstructured / semi-structured baselines: zeros are stored in the original (dense) shapes. `--pattern N:M`
keeps N of every M consecutive input weights of each row (2:4 = 2 zeros in every 4); the sparsity is then
1 - N/M and --sparsity may be omitted.
"""

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
    console,
    print_json,
    table,
)


def command(
    model: ModelArg,
    out: Annotated[Path, typer.Option(help="Output folder: the sparse model (HF format) and report.json.")],
    method: Annotated[str, typer.Option(help="magnitude (per layer), wanda (per row) or global-magnitude.")] = "wanda",
    sparsity: Annotated[
        float | None, typer.Option(help="Fraction of weights to zero, in [0, 1). Default 0.5, or 1-N/M with --pattern.")
    ] = None,
    pattern: Annotated[
        str | None, typer.Option(help="N:M semi-structured sparsity: keep N of every M inputs (2:4, 4:8).")
    ] = None,
    calib: CalibSource = "c4",
    samples: CalibSamples = 128,
    seq_len: CalibSeqLen = 2048,
    seed: CalibSeed = 0,
    sequential: Annotated[
        bool,
        typer.Option(
            "--sequential/--one-shot",
            help="Wanda: statistics of each layer from the already-pruned layers before it (locuslab/wanda), "
            "or from the dense model in one forward pass (half the compute).",
        ),
    ] = True,
    dtype: Dtype = "auto",
    device: Device = "auto",
    json_out: Annotated[bool, typer.Option("--json", help="Print the report as JSON instead of a table.")] = False,
) -> None:
    """Zero weights of MODEL's decoder Linear layers (magnitude, Wanda or torch.nn.utils.prune) and save it."""
    import time

    from llmprune.fsutil import check_replaceable, check_writable_parent
    from llmprune.models import load_model
    from llmprune.models.load import resolve_model_source
    from llmprune.sparsify import SparsifyConfig, save_sparse, sparsify_, wanda_calib
    from llmprune.sparsify.io import REPORT

    if sparsity is None and not pattern:
        sparsity = 0.5
    config = SparsifyConfig(
        method=method,
        sparsity=sparsity,
        pattern=pattern,
        calib=wanda_calib(source=calib, samples=samples, seq_len=seq_len, seed=seed),
        sequential=sequential,
    )
    check_writable_parent(out)
    check_replaceable(out, (REPORT,))
    resolve_model_source(model)  # a bad MODEL fails before anything is loaded
    t0 = time.perf_counter()
    m, tok = load_model(model, dtype=dtype, device=device)
    report = {"model": model, **sparsify_(m, config, tok)}
    report["total_seconds"] = round(time.perf_counter() - t0, 2)
    save_sparse(m, tok, out, report)
    if json_out:
        print_json(report)
        return
    achieved = report["achieved"]
    shorts = [k for k in achieved["layers"][0] if k not in ("layer", "total")]
    rows = [[r["layer"], *(f"{r[s]:.3f}" for s in shorts), f"{r['total']:.4f}"] for r in achieved["layers"]]
    rows.append(["all", *("" for _ in shorts), f"{achieved['overall']:.4f}"])
    title = f"{method} sparsity {config.target:g}{' ' + pattern if pattern else ''} ({report['seconds']:.1f} s)"
    table(title, ["layer", *(s.removesuffix("_proj") for s in shorts), "total"], rows)
    console.print(f"wrote {out}")
