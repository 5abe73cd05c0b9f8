"""Assemble `report.md` and its PNGs from a run folder; the output folder is written atomically."""

from __future__ import annotations

from pathlib import Path

from llmprune.report.artifacts import RunArtifacts, load_run
from llmprune.report.tables import markdown_table, metrics_rows, params_rows, widths_rows

WIDTHS_PNG, IMPORTANCE_PNG, METRICS_PNG = "widths.png", "importance.png", "metrics.png"


def _settings(run: RunArtifacts) -> str:
    recipe = run.report.recipe or {}
    prune = recipe.get("prune") or run.plan.meta.get("config") or {}
    keys = ("ratio", "scope", "importance", "aggregate", "ranking", "layers", "uniform", "reconstruct")
    parts = [f"{k}={prune[k]}" for k in keys if prune.get(k) is not None]
    lines = [f"- model: `{run.report.model or run.plan.meta.get('model', '?')}`"]
    if parts:
        lines.append(f"- pruning: {', '.join(parts)}")
    if run.manifest:
        how = "stock `from_pretrained`" if run.manifest.stock_loadable else "`trust_remote_code=True`"
        lines.append(f"- loads with {how} or `llmprune.models.load_model`")
    secs = run.report.total_seconds if run.report.total_seconds is not None else run.report.seconds
    lines.append(f"- run time: {secs:.1f} s (pruning {run.report.seconds:.1f} s)")
    return "\n".join(lines) + "\n"


def _bench_section(bench: dict) -> str:
    from llmprune.perf.table import bench_rows

    m = bench["models"]
    headers = ["", m["model"]["spec"]] + ([m["baseline"]["spec"], "model / baseline"] if "baseline" in m else [])
    cfg = bench["config"]
    note = (
        f"{bench.get('device_name', bench.get('device'))}, {bench.get('threads')} thread(s), {cfg['dtype']}, "
        f"prompt {cfg['prompt_len']} tokens, {cfg['new_tokens']} new tokens, median of {cfg['repeats']} runs."
    )
    return f"## Speed and size (bench.json)\n\n{note}\n\n" + markdown_table(headers, bench_rows(bench)) + "\n"


def render_markdown(run: RunArtifacts, figures: dict[str, str | None]) -> str:
    """The text of report.md; `figures` maps figure keys to PNG file names (None when not drawn)."""
    parts = [f"# llmprune report: {run.name}\n\n", _settings(run), "\n## Parameters\n\n"]
    parts.append(
        markdown_table(["", "before", "after", "after / before"], params_rows(run.report, run.plan, run.manifest))
    )
    metrics = run.metrics()
    if metrics:
        headers, rows = metrics_rows(metrics)
        parts += ["\n## Metrics\n\n", markdown_table(headers, rows)]
        first = next(iter(metrics.values()))
        if "seq_len" in first:
            parts.append(f"\nPerplexity: windows of {first['seq_len']} tokens, {first.get('windows', '?')} windows.")
        if first.get("limit"):
            parts.append(f" Zero-shot: first {first['limit']} examples of each task.")
        if "before" not in metrics:
            parts.append(
                " report.json has no `before` section (the recipe's `eval.before` was off), so there is no "
                "dense-model column; run with `eval.before: true` for a before/after table."
            )
        parts.append("\n")
        if figures.get("metrics"):
            parts.append(f"\n![metrics]({figures['metrics']})\n")
    if run.bench:
        parts.append("\n" + _bench_section(run.bench))
    parts += ["\n## Per-layer widths\n\n"]
    if figures.get("widths"):
        parts.append(f"![kept heads and MLP channels per layer]({figures['widths']})\n\n")
    parts.append(markdown_table(["layer", "heads", "KV heads", "MLP channels", "MLP kept"], widths_rows(run.plan)))
    if figures.get("importance"):
        parts += ["\n## Importance\n\n", f"![importance per layer]({figures['importance']})\n"]
    return "".join(parts)


def write_report(run_dir: str | Path, out: str | Path | None = None) -> Path:
    """Write `report.md` + PNGs for `run_dir` into `out` (default `run_dir/report`); returns report.md's path."""
    from llmprune.fsutil import atomic_dir
    from llmprune.report import plots

    run = load_run(run_dir)
    out = Path(out) if out is not None else run.path / "report"
    with atomic_dir(out, "report") as tmp:
        figures = {
            "widths": plots.plot_widths(run.plan, tmp / WIDTHS_PNG),
            "importance": plots.plot_importance(run.scores, run.plan, tmp / IMPORTANCE_PNG) if run.scores else None,
            "metrics": plots.plot_metrics(run.metrics(), tmp / METRICS_PNG),
        }
        names = {k: (p.name if p is not None else None) for k, p in figures.items()}
        (tmp / "report.md").write_text(render_markdown(run, names), encoding="utf-8")
    return out.expanduser().resolve() / "report.md"
