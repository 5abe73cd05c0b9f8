"""Run a recipe: load -> [eval before] -> prune -> [eval after] -> [recover -> merge -> eval] -> save.

Everything lands in one run folder (`llmprune.runfolder`), written atomically: the pruned model
(loadable by `llmprune.models.load_model`), plan.json, llmprune.json, report.json (`RunReport`) and
scores.safetensors (importance per group). With a `recovery:` section the saved model is the pruned
model with the LoRA adapter merged in, the adapter itself is kept in `adapter/`, and the report gains
`recovery` (training statistics) and `recovered` (the evaluation after merging).
"""

from __future__ import annotations

import shutil
import time
from functools import partial
from pathlib import Path

from rich.console import Console

from llmprune import tempfiles
from llmprune.errors import LlmpruneError
from llmprune.eval.config import EvalConfig
from llmprune.fsutil import atomic_dir, prepare_output
from llmprune.ownership import RUN_KINDS
from llmprune.perf.footprint import peaks, reset_peaks
from llmprune.recipes import Recipe
from llmprune.runfolder import ADAPTER, RunFolder, RunReport

console = Console(stderr=True)


def evaluate_model(model, tokenizer, cfg: EvalConfig, *, progress: bool = True) -> dict:
    """Perplexity (and zero-shot tasks when the evaluation suite is installed) as one dict."""
    from llmprune.eval.evaluate import evaluate

    return evaluate(model, tokenizer, cfg, progress=progress)


def check_layer_range(model: str, layers: str | None, name: str = "prune.layers") -> None:
    """A layer range beyond MODEL's layers fails from config.json, before the model loads (`name` names
    the option in the error)."""
    from llmprune.graph.build import parse_layer_range
    from llmprune.models.load import num_layers_of

    n = num_layers_of(model) if layers is not None else None
    if n is None:
        return
    try:
        parse_layer_range(layers, n)
    except LlmpruneError as e:
        raise LlmpruneError(f"{name}: {e}") from None


def check_inputs(recipe: Recipe) -> None:
    """Fail on a missing model, data file or task file, or a bad layer range, before any expensive step,
    naming every problem (one line each), not only the first."""
    from llmprune.data import load_text
    from llmprune.data.calib import calibration_text
    from llmprune.models.load import check_family, resolve_model_source

    problems: list[str] = []

    def check(fn, *args, **kwargs) -> None:
        try:
            fn(*args, **kwargs)
        except LlmpruneError as e:
            problems.append(str(e))

    check(check_family, recipe.model)  # an unsupported architecture fails before any weights are read
    if not problems:  # a missing model is named once
        check(check_layer_range, recipe.model, recipe.prune.layers)
    for source in sorted({c.source for c in recipe.prune.calibrations()}):
        check(calibration_text, source)
    if recipe.recovery is not None:
        from llmprune.recovery.data import load_source

        check(load_source, recipe.recovery.data)
        if recipe.recovery.teacher:
            check(resolve_model_source, recipe.recovery.teacher)
    if recipe.eval:
        for name in recipe.eval.ppl:
            check(load_text, name)
        if recipe.eval.tasks:
            from llmprune.eval.zeroshot import load_tasks

            check(load_tasks, recipe.eval.tasks, limit=recipe.eval.limit)
    if len(problems) == 1:
        raise LlmpruneError(problems[0])
    if problems:
        raise LlmpruneError(f"{len(problems)} problems, nothing was run:\n  " + "\n  ".join(problems))


def offload_wanted(recipe: Recipe) -> bool:
    """`prune.offload`, or, when null, whether the weights would take more than half the free memory of
    the device (only for the sequential engine without Taylor allocation, and a safetensors folder)."""
    cfg = recipe.prune
    if cfg.offload is not None:
        return cfg.offload
    if not cfg.can_offload:
        return False
    from llmprune.models.load import resolve_device, resolve_dtype, resolve_model_source
    from llmprune.perf.footprint import weights_bytes
    from llmprune.perf.memory import free_memory

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

    out = prepare_output(out, RUN_KINDS)  # before the expensive steps, not after them
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
    eval_seconds: float | None = None  # the last evaluation's duration: the next one's estimate
    if recipe.eval and recipe.eval.before and loader is not None:
        console.print("offload: the dense model is never whole in memory, so it is not evaluated (eval.before)")
    elif recipe.eval and recipe.eval.before:
        from llmprune.eval.reuse import cached_evaluation

        console.print("[bold]evaluating the dense model[/bold] (eval.before; results are cached by model and settings)")
        run_eval = partial(evaluate_model, model, tok, recipe.eval, progress=progress)
        sections["before"], eval_seconds = cached_evaluation(model, tok, recipe.eval, run_eval, say=console.print)
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
        estimate = eval_eta(eval_seconds, result.params_after / max(result.params_before, 1))
        console.print(f"[bold]evaluating the pruned model[/bold]{estimate}")
        t_eval = time.perf_counter()
        sections["after"] = evaluate_model(model, tok, recipe.eval, progress=progress)
        eval_seconds = time.perf_counter() - t_eval
        sections["ppl"] = sections["after"].get("ppl")
    adapter = None
    try:
        if recipe.recovery is not None:
            model, adapter = _recover_and_merge(model, tok, recipe, result.plan, out, sections, progress, eval_seconds)
        sections["total_seconds"] = round(time.perf_counter() - t0, 2)
        report = RunReport(**sections)
        with atomic_dir(out, "run", replaces=RUN_KINDS) as tmp:
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
            tempfiles.remove(adapter.parent)
    return report.to_json()


def eval_eta(seconds: float | None, scale: float = 1.0) -> str:
    """' (about N s, ...)' from an earlier evaluation's time scaled by the parameter ratio; '' without one."""
    if not seconds:
        return ""
    return f" (about {seconds * scale:.0f} s, from the previous evaluation)"


def _recover_and_merge(
    model, tok, recipe: Recipe, plan, out: Path, sections: dict, progress: bool, eval_seconds: float | None
):
    """LoRA-train the pruned model in a scratch folder next to `out`, merge, evaluate; returns (model, adapter)."""
    from llmprune.recovery import merge_lora, recover

    cfg = recipe.recovery
    out.parent.mkdir(parents=True, exist_ok=True)  # --out runs/NEW on a fresh checkout: runs/ may not exist yet
    work = tempfiles.new_dir(out)  # removed by run_recipe once the adapter is copied into the run folder
    adapter = work / ADAPTER
    try:
        console.print(f"[bold]recovering[/bold] with LoRA r={cfg.lora_r} on {cfg.data}")
        base = {"plan_sha256": plan.digest()}
        stats = recover(model, tok, cfg, adapter, progress=progress, base_info=base, device=recipe.device)
        sections["recovery"] = stats
        model = merge_lora(model, adapter)
        if recipe.eval:
            console.print(f"[bold]evaluating the recovered model[/bold]{eval_eta(eval_seconds)}")
            sections["recovered"] = evaluate_model(model, tok, recipe.eval, progress=progress)
            sections["ppl_recovered"] = sections["recovered"].get("ppl")
    except BaseException:
        tempfiles.remove(work)
        raise
    return model, adapter
