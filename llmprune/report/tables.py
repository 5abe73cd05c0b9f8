"""The report's tables as plain data (rows) and as Markdown."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from llmprune.prune.plan import PrunePlan
from llmprune.runfolder import Manifest, RunReport


@dataclass(frozen=True)
class LayerWidth:
    """Original and kept widths of one decoder layer (kept = 0 everywhere for a dropped layer)."""

    layer: int
    heads: int
    kept_heads: int
    kv_heads: int
    kept_kv_heads: int
    mlp: int
    kept_mlp: int
    dropped: bool


def layer_widths(plan: PrunePlan) -> list[LayerWidth]:
    b = plan.base
    out = []
    for i in range(b.num_layers):
        lp = plan.layer(i)
        out.append(
            LayerWidth(
                layer=i,
                heads=b.num_heads,
                kept_heads=0 if lp.drop else b.num_heads - len(lp.heads),
                kv_heads=b.num_kv_heads,
                kept_kv_heads=0 if lp.drop else b.num_kv_heads - len(lp.kv_heads),
                mlp=b.intermediate_size,
                kept_mlp=0 if lp.drop else b.intermediate_size - len(lp.mlp_channels),
                dropped=lp.drop,
            )
        )
    return out


def _cell(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v).replace("|", "\\|")


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(map(_cell, headers)) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(map(_cell, r)) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def params_rows(report: RunReport, plan: PrunePlan, manifest: Manifest | None) -> list[list[Any]]:
    """Rows: what, before, after, after / before."""
    before, after = report.params_before, report.params_after
    widths = layer_widths(plan)
    b = plan.base
    hidden_after = manifest.hidden_size if manifest else b.hidden_size - len(plan.hidden_channels)
    rows: list[list[Any]] = [
        ["parameters", f"{before:,}", f"{after:,}", f"{after / before:.3f}"],
        ["decoder layers", b.num_layers, sum(not w.dropped for w in widths), ""],
        ["hidden size", b.hidden_size, hidden_after, f"{hidden_after / b.hidden_size:.3f}"],
    ]
    for label, orig, kept in (
        ("attention heads (all layers)", sum(w.heads for w in widths), sum(w.kept_heads for w in widths)),
        ("KV heads (all layers)", sum(w.kv_heads for w in widths), sum(w.kept_kv_heads for w in widths)),
        ("MLP channels (all layers)", sum(w.mlp for w in widths), sum(w.kept_mlp for w in widths)),
    ):
        rows.append([label, f"{orig:,}", f"{kept:,}", f"{kept / orig:.3f}"])
    return rows


def metrics_rows(metrics: dict[str, dict]) -> tuple[list[str], list[list[Any]]]:
    """(headers, rows) of the before / after / recovered table: ppl per dataset, acc / acc_norm per task, means.

    With a `before` column, the last column is the change of the final column against it.
    """
    sections = list(metrics)
    keys: list[tuple[str, tuple[str, ...]]] = []
    for m in metrics.values():
        for ds in m.get("ppl", {}):
            keys.append((f"ppl {ds}", ("ppl", ds)))
        for task in m.get("tasks", {}):
            keys.append((f"{task} acc", ("tasks", task, "acc")))
            keys.append((f"{task} acc_norm", ("tasks", task, "acc_norm")))
    keys += [("mean acc", ("mean_acc",)), ("mean acc_norm", ("mean_acc_norm",))]
    seen, rows = set(), []
    delta = "before" in sections and len(sections) > 1
    for label, path in keys:
        if label in seen:
            continue
        seen.add(label)
        values = [_dig(metrics[s], path) for s in sections]
        if all(v is None for v in values):
            continue
        row = [label, *values]
        if delta:
            first, last = values[0], values[-1]
            row.append(None if first is None or last is None else f"{last - first:+.4g}")
        rows.append(row)
    headers = ["metric", *sections] + ([f"{sections[-1]} - before"] if delta else [])
    return headers, rows


def _dig(d: dict, path: tuple[str, ...]) -> float | None:
    for k in path:
        if not isinstance(d, dict) or k not in d:
            return None
        d = d[k]
    return d if isinstance(d, int | float) else None


def widths_rows(plan: PrunePlan) -> list[list[Any]]:
    return [
        [
            w.layer,
            "dropped" if w.dropped else f"{w.kept_heads}/{w.heads}",
            "dropped" if w.dropped else f"{w.kept_kv_heads}/{w.kv_heads}",
            "dropped" if w.dropped else f"{w.kept_mlp}/{w.mlp}",
            f"{w.kept_mlp / w.mlp:.0%}",
        ]
        for w in layer_widths(plan)
    ]
