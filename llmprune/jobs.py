"""Run a recipe: load -> [eval before] -> prune -> [eval after] -> [recover -> merge -> eval] -> save.

Everything lands in one run folder (`llmprune.runfolder`), written atomically: the pruned model
(loadable by `llmprune.models.load_model`), plan.json, llmprune.json, report.json (`RunReport`) and
scores.safetensors (importance per group). With a `recovery:` section the saved model is the pruned
model with the LoRA adapter merged in, the adapter itself is kept in `adapter/`, and the report gains
`recovery` (training statistics) and `recovered` (the evaluation after merging).
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

from rich.console import Console

from llmprune.errors import LlmpruneError
from llmprune.eval.config import EvalConfig
from llmprune.fsutil import atomic_dir, check_replaceable, check_writable_parent
from llmprune.perf.footprint import peaks, reset_peaks
from llmprune.recipes import Recipe
from llmprune.runfolder import ADAPTER, RUN_MARKERS, RunFolder, RunReport

console = Console(stderr=True)


def evaluate_model(model, tokenizer, cfg: EvalConfig, *, progress: bool = True) -> dict:
    """Perplexity (and zero-shot tasks when the evaluation suite is installed) as one dict."""
    from llmprune.eval.evaluate import evaluate

    return evaluate(model, tokenizer, cfg, progress=progress)


def check_inputs(recipe: Recipe) -> None:
    """Fail on a missing model, data file or task file before any expensive step."""
    from llmprune.data import load_text
    from llmprune.models.load import check_family, resolve_model_source

    check_family(recipe.model)  # an unsupported architecture fails before any weights are read
    if recipe.recovery is not None:
        from llmprune.recovery.data import load_source

        load_source(recipe.recovery.data)
        if recipe.recovery.teacher:
            resolve_model_source(recipe.recovery.teacher)
    if recipe.eval:
        for name in recipe.eval.ppl:
            load_text(name)
        if recipe.eval.tasks:
            from llmprune.eval.zeroshot import load_tasks

            load_tasks(recipe.eval.tasks, limit=recipe.eval.limit)


def offload_wanted(recipe: Recipe) -> bool:
    """`prune.offload`, or, when null, whether the weights would take more than half the free memory of
    the device (only for the sequential engine without Taylor allocation, and a safetensors folder)."""
    cfg = recipe.prune
    if cfg.offload is not None:
        return cfg.offload
    if not cfg.can_offload:
        return False
    from llmprune.models.load import resolve_device, resolve_dtype, resolve_model_source
    from llmprune.perf.footprint import free_memory, weights_bytes

    if resolve_model_source(recipe.model)[0] not in ("alias", "hf_dir", "hub"):
        return False
    device = resolve_device(recipe.device)
    try:
        need = weights_bytes(recipe.model, resolve_dtype(recipe.dtype, device))
    except LlmpruneError:  # not on disk yet (an alias fetched on first use, a hub model not cached)
        return False
    return need > free_memory(device) / 2


def run_recipe(recipe: Recipe, out: str | Path, *, progress: bool = True) -> dict:
    """Execute `recipe`, writing everything to `out`; returns the report (also in out/report.json)."""
    from llmprune.models import load_model

    out = check_writable_parent(out)
    check_replaceable(out, RUN_MARKERS)  # before the expensive steps, not after them
    check_inputs(recipe)
    t0 = time.perf_counter()
    loader = sink = None
    if offload_wanted(recipe):
        from llmprune.models.lazy import load_offloaded
        from llmprune.models.load import resolve_device, resolve_dtype
        from llmprune.surgery.stream import LayerSink

        device = resolve_device(recipe.device)
        model, tok, loader = load_offloaded(recipe.model, dtype=resolve_dtype(recipe.dtype, device), device=device)
        sink = LayerSink.beside(out)  # pruned layers go to disk as they are done
    else:
        model, tok = load_model(recipe.model, dtype=recipe.dtype, device=recipe.device)
    try:
        return _prune_and_save(recipe, out, model, tok, loader, sink, t0, progress)
    finally:
        if sink is not None:
            sink.close()


def _prune_and_save(recipe: Recipe, out: Path, model, tok, loader, sink, t0: float, progress: bool) -> dict:
    """The rest of `run_recipe` once the model is loaded (with `sink`, offload: layers written as done)."""
    from llmprune.prune.pipeline import prune_model
    from llmprune.surgery.io import save_pruned
    from llmprune.surgery.stream import save_streamed

    sections: dict = {"recipe": recipe.model_dump(mode="json"), "model": recipe.model}
    if recipe.eval and recipe.eval.before and loader is not None:
        console.print("offload: the dense model is never whole in memory, so it is not evaluated (eval.before)")
    elif recipe.eval and recipe.eval.before:
        console.print("[bold]evaluating the dense model[/bold]")
        sections["before"] = evaluate_model(model, tok, recipe.eval, progress=progress)
    cfg = recipe.prune
    console.print(f"[bold]pruning[/bold] {cfg.ratio:.0%} ({cfg.scope}, engine {cfg.engine})")
    device = next(iter(model.parameters())).device
    reset_peaks(device)
    result = prune_model(model, tok, cfg, progress=progress, loader=loader, sink=sink)
    sections.update(result.report())
    sections["memory"] = {"offload": loader is not None, **peaks(device)}
    if sink is not None and (recipe.eval or recipe.recovery is not None):
        sink.read_back_(model, device=device)  # evaluation and training need the whole pruned model
        sink = None
    console.print(
        f"removed {result.params_before - result.params_after:,} of {result.params_before:,} parameters "
        f"({result.ratio_removed:.2%}) in {result.seconds:.1f} s"
    )
    if recipe.eval:
        console.print("[bold]evaluating the pruned model[/bold]")
        sections["after"] = evaluate_model(model, tok, recipe.eval, progress=progress)
        sections["ppl"] = sections["after"].get("ppl")
    adapter = None
    try:
        if recipe.recovery is not None:
            model, adapter = _recover_and_merge(model, tok, recipe, result.plan, out, sections, progress)
        sections["total_seconds"] = round(time.perf_counter() - t0, 2)
        report = RunReport(**sections)
        with atomic_dir(out, replaces=RUN_MARKERS) as tmp:
            extra = {"merged_adapter": ADAPTER} if adapter is not None else None
            if sink is not None:  # the layers are on disk: written to the folder from there
                save_streamed(model, result.plan, tmp, sink, tokenizer=tok, extra=extra)
            else:
                save_pruned(model, result.plan, tmp, tokenizer=tok, extra=extra)
            folder = RunFolder(tmp)
            folder.write_scores(result.scores)
            if adapter is not None:
                shutil.copytree(adapter, folder / ADAPTER)
            folder.write_report(report)
    finally:
        if adapter is not None:
            shutil.rmtree(adapter.parent, ignore_errors=True)
    return report.to_json()


def _recover_and_merge(model, tok, recipe: Recipe, plan, out: Path, sections: dict, progress: bool):
    """LoRA-train the pruned model in a scratch folder next to `out`, merge, evaluate; returns (model, adapter)."""
    from llmprune.recovery import merge_lora, recover

    cfg = recipe.recovery
    out.parent.mkdir(parents=True, exist_ok=True)  # --out runs/NEW on a fresh checkout: runs/ may not exist yet
    work = Path(tempfile.mkdtemp(prefix=f".{out.name}.recovery-", dir=out.parent))
    adapter = work / ADAPTER
    try:
        console.print(f"[bold]recovering[/bold] with LoRA r={cfg.lora_r} on {cfg.data}")
        stats = recover(model, tok, cfg, adapter, progress=progress, base_info={"plan_sha256": plan.digest()})
        sections["recovery"] = stats
        model = merge_lora(model, adapter)
        if recipe.eval:
            console.print("[bold]evaluating the recovered model[/bold]")
            sections["recovered"] = evaluate_model(model, tok, recipe.eval, progress=progress)
            sections["ppl_recovered"] = sections["recovered"].get("ppl")
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return model, adapter
