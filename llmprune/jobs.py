"""Run a recipe: load -> [eval before] -> prune -> [eval after] -> [recover -> merge -> eval] -> save.

Everything lands in one output folder, written atomically: the pruned model (loadable by
`llmprune.models.load_model`), plan.json, report.json and scores.safetensors (importance per group).
With a `recovery:` section the saved model is the pruned model with the LoRA adapter merged in, the
adapter itself is kept in `adapter/`, and the report gains `recovery` (training statistics) and
`recovered` (the evaluation after merging).
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
import time
from pathlib import Path

from rich.console import Console

from llmprune.fsutil import atomic_dir, atomic_write_json, check_replaceable, check_writable_parent
from llmprune.recipes import EvalConfig, Recipe

console = Console(stderr=True)

RUN_MARKERS = ("llmprune.json", "report.json")  # files that make a folder an earlier run's output


def evaluate_model(model, tokenizer, cfg: EvalConfig, *, progress: bool = True) -> dict:
    """Perplexity (and zero-shot tasks when the evaluation suite is installed) as one dict."""
    from llmprune.eval import evaluate as suite

    return suite.evaluate(
        model,
        tokenizer,
        ppl=tuple(cfg.ppl),
        seq_len=cfg.seq_len,
        max_windows=cfg.max_windows,
        tasks=tuple(cfg.tasks),
        limit=cfg.limit,
        batch_size=cfg.batch_size,
        scorer=cfg.scorer,
    )


def run_recipe(recipe: Recipe, out: str | Path, *, progress: bool = True) -> dict:
    """Execute `recipe`, writing everything to `out`; returns the report dict (also in out/report.json)."""
    from safetensors.torch import save_file

    from llmprune.data import load_text
    from llmprune.models import load_model
    from llmprune.models.load import resolve_model_source
    from llmprune.pipeline import prune_model
    from llmprune.surgery.io import save_pruned

    out = check_writable_parent(out)
    check_replaceable(out, RUN_MARKERS)  # before the expensive steps, not after them
    resolve_model_source(recipe.model)
    recovery = _check_recovery(recipe)
    if recipe.eval:
        for name in recipe.eval.ppl:  # fail on missing data or bad task files before the expensive steps
            load_text(name)
        if recipe.eval.tasks:
            from llmprune.eval.zeroshot import load_tasks

            load_tasks(recipe.eval.tasks, limit=recipe.eval.limit)
    t0 = time.perf_counter()
    model, tok = load_model(recipe.model, dtype=recipe.dtype, device=recipe.device)
    report: dict = {"recipe": recipe.model_dump(mode="json"), "model": recipe.model}
    if recipe.eval and recipe.eval.before:
        console.print("[bold]evaluating the dense model[/bold]")
        report["before"] = evaluate_model(model, tok, recipe.eval, progress=progress)
    console.print(f"[bold]pruning[/bold] {recipe.prune.ratio:.0%} ({recipe.prune.scope}, {recipe.prune.importance})")
    result = prune_model(model, tok, recipe.prune, progress=progress)
    report.update(result.report())
    console.print(
        f"removed {result.params_before - result.params_after:,} of {result.params_before:,} parameters "
        f"({result.ratio_removed:.2%}) in {result.seconds:.1f} s"
    )
    if recipe.eval:
        console.print("[bold]evaluating the pruned model[/bold]")
        report["after"] = evaluate_model(model, tok, recipe.eval, progress=progress)
        report["ppl"] = report["after"].get("ppl", {})
    adapter = None
    try:
        if recovery is not None:
            model, adapter = _recover_and_merge(model, tok, recovery, result.plan, out, report, recipe, progress)
        report["total_seconds"] = round(time.perf_counter() - t0, 2)
        with atomic_dir(out, replaces=RUN_MARKERS) as tmp:
            extra = {"merged_adapter": "adapter"} if adapter is not None else None
            save_pruned(model, result.plan, tmp, tokenizer=tok, extra=extra)
            save_file({k: v.float().contiguous() for k, v in result.scores.items()}, str(tmp / "scores.safetensors"))
            if adapter is not None:
                shutil.copytree(adapter, tmp / "adapter")
            atomic_write_json(tmp / "report.json", report)
    finally:
        if adapter is not None:
            shutil.rmtree(adapter.parent, ignore_errors=True)
    return report


def _check_recovery(recipe: Recipe):
    """Validate the `recovery:` section and its data before any expensive step (None when absent)."""
    if recipe.recovery is None:
        return None
    from llmprune.models.load import resolve_model_source
    from llmprune.recovery.config import recovery_config
    from llmprune.recovery.data import load_source

    cfg = recovery_config(recipe.recovery)
    load_source(cfg.data)
    if cfg.teacher:
        resolve_model_source(cfg.teacher)
    return cfg


def _recover_and_merge(model, tok, cfg, plan, out: Path, report: dict, recipe: Recipe, progress: bool):
    """LoRA-train the pruned model in a scratch folder next to `out`, merge, evaluate; returns (model, adapter)."""
    from llmprune.recovery import merge_lora, recover

    out.parent.mkdir(parents=True, exist_ok=True)  # --out runs/NEW on a fresh checkout: runs/ may not exist yet
    work = Path(tempfile.mkdtemp(prefix=f".{out.name}.recovery-", dir=out.parent))
    adapter = work / "adapter"
    try:
        console.print(f"[bold]recovering[/bold] with LoRA r={cfg.lora_r} on {cfg.data}")
        digest = hashlib.sha256((plan.to_json() + "\n").encode()).hexdigest()
        stats = recover(model, tok, cfg, adapter, progress=progress, base_info={"plan_sha256": digest})
        report["recovery"] = stats
        model = merge_lora(model, adapter)
        if recipe.eval:
            console.print("[bold]evaluating the recovered model[/bold]")
            report["recovered"] = evaluate_model(model, tok, recipe.eval, progress=progress)
            report["ppl_recovered"] = report["recovered"].get("ppl", {})
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return model, adapter
