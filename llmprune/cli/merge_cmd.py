"""`llmprune merge PRUNED_DIR LORA_DIR --out MERGED_DIR`: fold a LoRA adapter into the pruned model."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from llmprune.cli.common import Dtype


def command(
    pruned_dir: Annotated[Path, typer.Argument(help="The pruned model folder the adapter was trained on.")],
    lora_dir: Annotated[Path, typer.Argument(help="Adapter folder written by `llmprune recover`.")],
    out: Annotated[Path, typer.Option(help="Output folder for the merged model (same format as pruned).")],
    dtype: Dtype = "auto",
) -> None:
    """Merge LORA_DIR into PRUNED_DIR and save a standalone model (loads without peft)."""
    from llmprune.cli.common import console
    from llmprune.fsutil import prepare_output
    from llmprune.models.load import load_model
    from llmprune.models.params import count_params
    from llmprune.ownership import RUN_KINDS
    from llmprune.recovery import merge_lora, save_merged
    from llmprune.runfolder import RunFolder

    RunFolder(pruned_dir).read_manifest()
    prepare_output(out, RUN_KINDS)
    model, tok = load_model(str(pruned_dir), dtype=dtype, device="cpu")
    merged = merge_lora(model, lora_dir, pruned_dir=pruned_dir)
    path = save_merged(merged, pruned_dir, out, tokenizer=tok, extra={"merged_adapter": str(lora_dir.resolve())})
    console.print(f"merged {lora_dir} into {pruned_dir}: {count_params(merged):,} parameters -> {path}")
