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
    CALIB_FLAGS,
    SHARED_HELP,
    Device,
    Dtype,
    JsonOut,
    ModelArg,
    build_config,
    console,
    option,
    table,
    write_json,
)
from llmprune.data.config import CalibConfig
from llmprune.sparsify.config import WANDA_CALIB, SparsifyConfig


def command(
    model: ModelArg,
    out: Annotated[Path, typer.Option(help="Output folder: the sparse model (HF format) and report.json.")],
    method: str = option(SparsifyConfig, "method"),
    sparsity: float | None = option(SparsifyConfig, "sparsity"),
    pattern: str | None = option(SparsifyConfig, "pattern"),
    calib: str = option(CalibConfig, "source", "--calib", default=WANDA_CALIB["source"]),
    samples: int = option(CalibConfig, "samples", "--samples", default=WANDA_CALIB["samples"]),
    seq_len: int = option(
        CalibConfig, "seq_len", "--seq-len", default=WANDA_CALIB["seq_len"], help=SHARED_HELP["--seq-len"]
    ),
    seed: int = option(CalibConfig, "seed", "--seed", default=WANDA_CALIB["seed"], help=SHARED_HELP["--seed"]),
    sequential: bool = option(SparsifyConfig, "sequential", "--sequential/--one-shot"),
    dtype: Dtype = "auto",
    device: Device = "auto",
    json_out: JsonOut = None,
) -> None:
    """Zero weights of MODEL's decoder Linear layers (magnitude, Wanda or torch.nn.utils.prune) and save it."""
    import time

    from llmprune.fsutil import check_writable_parent, prepare_output
    from llmprune.models.load import check_family, load_model
    from llmprune.sparsify import save_sparse, sparsify_

    config = build_config(
        SparsifyConfig,
        {
            "method": method,
            "sparsity": sparsity,
            "pattern": pattern,
            "calib": {"source": calib, "samples": samples, "seq_len": seq_len, "seed": seed},
            "sequential": sequential,
        },
        flags=CALIB_FLAGS,
    )
    prepare_output(out, ("sparse",))
    if json_out is not None:
        check_writable_parent(json_out)
    check_family(model)  # a bad MODEL or an unsupported architecture fails before anything is loaded
    t0 = time.perf_counter()
    m, tok = load_model(model, dtype=dtype, device=device)
    report = {"model": model, **sparsify_(m, config, tok)}
    report["total_seconds"] = round(time.perf_counter() - t0, 2)
    save_sparse(m, tok, out, report)
    achieved = report["achieved"]
    shorts = [k for k in achieved["layers"][0] if k not in ("layer", "total")]
    rows = [[r["layer"], *(f"{r[s]:.3f}" for s in shorts), f"{r['total']:.4f}"] for r in achieved["layers"]]
    rows.append(["all", *("" for _ in shorts), f"{achieved['overall']:.4f}"])
    title = f"{method} sparsity {config.target:g}{' ' + pattern if pattern else ''} ({report['seconds']:.1f} s)"
    table(title, ["layer", *(s.removesuffix("_proj") for s in shorts), "total"], rows)
    console.print(f"wrote {out}")
    write_json(json_out, report)
