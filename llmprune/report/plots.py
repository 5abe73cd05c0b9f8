"""The report's figures (matplotlib, Agg backend): kept widths, importance per layer, before/after metrics.

Every function draws one figure and saves it to the given path as PNG; none needs a display.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402

from llmprune.graph.nodes import parse_group_id  # noqa: E402
from llmprune.prune.plan import PrunePlan  # noqa: E402
from llmprune.report.tables import layer_widths  # noqa: E402

ORIGINAL, KEPT, REMOVED = "#d0d0d0", "#2b6cb0", "#d9480f"
SECTION_COLORS = {"before": "#8c8c8c", "after": "#2b6cb0", "recovered": "#2f9e44"}
SECTION_TITLES = {"before": "dense model", "after": "after pruning", "recovered": "after recovery"}
DPI = 120


def _layer_axis(ax, n: int) -> None:
    """Layer ticks that stay legible up to ~80 layers: every layer up to 40, then every 2nd / 4th."""
    step = 1 if n <= 40 else 2 if n <= 80 else 4
    ax.set_xticks(range(0, n, step))
    ax.tick_params(axis="x", labelsize=8 if n > 20 else 9)
    ax.set_xlim(-0.7, n - 0.3)
    ax.set_xlabel("decoder layer")


def plot_widths(plan: PrunePlan, path: Path) -> Path:
    """Bars per layer: original width (grey) with the kept width over it, for heads and MLP channels."""
    widths = layer_widths(plan)
    n = len(widths)
    x = list(range(n))
    fig, axes = plt.subplots(2, 1, figsize=(max(8.0, 0.32 * n + 3), 6.4), sharex=True)
    panels = [
        (axes[0], "attention heads", [w.heads for w in widths], [w.kept_heads for w in widths]),
        (axes[1], "MLP channels", [w.mlp for w in widths], [w.kept_mlp for w in widths]),
    ]
    for ax, label, orig, kept in panels:
        ax.bar(x, orig, color=ORIGINAL, width=0.8, label="original")
        ax.bar(x, kept, color=KEPT, width=0.8, label="kept")
        total_o, total_k = sum(orig), sum(kept)
        ax.set_ylabel(label)
        ax.set_title(f"{label}: {total_k:,} of {total_o:,} kept ({total_k / total_o:.0%})", fontsize=10, loc="left")
        ax.set_ylim(0, max(orig) * 1.12)
        ax.grid(axis="y", alpha=0.3)
        ax.set_axisbelow(True)
        if max(orig) <= 32:  # few units: integer ticks
            ax.yaxis.get_major_locator().set_params(integer=True)
    for w in widths:
        if w.dropped:
            for ax in axes:
                ax.annotate("dropped", (w.layer, 0), rotation=90, ha="center", va="bottom", fontsize=7)
    axes[0].legend(loc="upper right", ncol=2, fontsize=8, frameon=False, bbox_to_anchor=(1.0, 1.16))
    _layer_axis(axes[1], n)
    fig.suptitle("Kept structures per layer", fontsize=12, x=0.01, ha="left")
    fig.tight_layout()
    return _save(fig, path)


_KINDS = [("attn_head", "attention heads"), ("mlp_channel", "MLP channels"), ("layer", "whole layers")]


def _per_layer_scores(scores: dict[str, torch.Tensor], kind: str) -> dict[int, torch.Tensor]:
    out = {}
    for key, value in scores.items():
        try:
            k, layer = parse_group_id(key)
        except ValueError:
            continue
        if k == kind and layer is not None:
            out[layer] = value.detach().double().flatten()
    return dict(sorted(out.items()))


def _removed(plan: PrunePlan, kind: str, layer: int) -> set[int]:
    lp = plan.layer(layer)
    if kind == "attn_head":
        return set(lp.heads)
    if kind == "mlp_channel":
        return set(lp.mlp_channels)
    return {0} if lp.drop else set()


def _use_log(values: list[torch.Tensor]) -> bool:
    flat = torch.cat(values)
    flat = flat[torch.isfinite(flat)]
    return bool(flat.numel()) and bool((flat > 0).all()) and float(flat.max() / flat.min()) > 50


def plot_importance(scores: dict[str, torch.Tensor], plan: PrunePlan, path: Path) -> Path | None:
    """Per layer: box plot of unit importance (heads, MLP channels) with every removed unit drawn on top;
    the caption says how units were chosen and each panel its scale. None if there are no scores."""
    panels = [(k, label, _per_layer_scores(scores, k)) for k, label in _KINDS]
    panels = [p for p in panels if p[2]]
    if not panels:
        return None
    n = plan.base.num_layers
    notes = importance_notes(plan, [k for k, _, _ in panels])
    height = 3.3 * len(panels) + 0.4 + 0.22 * len(notes)
    fig, axes = plt.subplots(len(panels), 1, figsize=(max(8.0, 0.32 * n + 3), height), squeeze=False)
    for ax, (kind, label, per_layer) in zip(axes[:, 0], panels, strict=True):
        if kind == "layer":
            _layer_bars(ax, per_layer, plan, n)
        else:
            _unit_panel(ax, kind, label, per_layer, plan, n)
    cfg = plan.meta.get("config") or {}
    how = ", ".join(str(cfg[k]) for k in ("importance", "aggregate") if cfg.get(k))
    fig.suptitle(f"Importance distribution per layer{f' ({how})' if how else ''}", fontsize=12, x=0.01, ha="left")
    if notes:
        fig.text(0.01, 0.005, "\n".join(notes), fontsize=8, ha="left", va="bottom", wrap=True)
    fig.tight_layout(rect=(0, 0.22 * len(notes) / height + 0.01 * bool(notes), 1, 1))
    return _save(fig, path)


def importance_notes(plan: PrunePlan, kinds: list[str]) -> list[str]:
    """The caption: why a removed unit may score above a kept one, and how the scales are chosen."""
    cfg = plan.meta.get("config") or {}
    notes = []
    if "attn_head" in kinds and plan.base.group_size > 1:
        notes.append(
            f"Attention heads (GQA, {plan.base.group_size} query heads per KV head) go in slots: the k-th weakest "
            "query head of every KV group is removed together, so a removed head can score above a kept head of "
            "another group."
        )
    if cfg.get("engine") == "sequential":
        notes.append(
            "Engine sequential: the units a layer loses are chosen by the increase of its output error after the "
            "refit (OBS), not by these scores, so removed and kept units overlap."
        )
    elif cfg.get("ranking") == "global":
        notes.append("Ranking global: units are ranked by importance per parameter across all pruned layers.")
    notes.append("Each panel states its scale: log when the scores span more than 50x, else linear.")
    return notes


def _unit_panel(ax, kind: str, label: str, per_layer: dict[int, torch.Tensor], plan: PrunePlan, n: int) -> None:
    """Boxes of all units per layer; kept units as grey dots (few units only) and removed units over them."""
    layers = list(per_layer)
    values = [per_layer[i] for i in layers]
    ax.boxplot(
        [v.numpy() for v in values],
        positions=layers,
        widths=0.6,
        showfliers=False,
        patch_artist=True,
        boxprops={"facecolor": "#e7eef7", "edgecolor": "#5a6b7d", "alpha": 0.8},
        medianprops={"color": KEPT},
        whiskerprops={"color": "#5a6b7d"},
        capprops={"color": "#5a6b7d"},
        zorder=1,
    )
    gen = torch.Generator().manual_seed(0)
    removed_total = 0
    for i, v in zip(layers, values, strict=True):
        gone = sorted(u for u in _removed(plan, kind, i) if u < v.numel())
        few = v.numel() <= 64
        if few:  # spread by rank, so no two units of a layer share a spot
            offsets = torch.empty(v.numel())
            offsets[torch.argsort(v)] = torch.linspace(-0.32, 0.32, v.numel()) if v.numel() > 1 else torch.zeros(1)
        else:
            offsets = (torch.rand(v.numel(), generator=gen) - 0.5) * 0.5
        if few:
            kept = [u for u in range(v.numel()) if u not in set(gone)]
            ax.scatter((i + offsets[kept]).numpy(), v[kept].numpy(), s=9, color="#5a6b7d", alpha=0.7, zorder=3)
        if gone:
            size, edge = (22, 0.8) if few else (5, 0.0)
            ax.scatter(
                (i + offsets[gone]).numpy(),
                v[gone].numpy(),
                s=size,
                color=REMOVED,
                alpha=0.95 if few else 0.5,
                edgecolors="white",
                linewidths=edge,
                zorder=4,
            )
            removed_total += len(gone)
            ax.annotate(  # the count, for when dots of equal scores coincide
                f"-{len(gone)}",
                (i, 1.0),
                xycoords=("data", "axes fraction"),
                ha="center",
                va="bottom",
                fontsize=7,
                color=REMOVED,
            )
    log = _use_log(values)
    if log:
        ax.set_yscale("log")
    ax.set_ylabel(f"importance ({'log' if log else 'linear'} scale)")
    units = sum(v.numel() for v in values)
    ax.set_title(
        f"{label}: importance per unit, {removed_total:,} of {units:,} removed (-N: removed in the layer; box: "
        "all units of the layer, whiskers 1.5 IQR)",
        fontsize=10,
        loc="left",
        pad=12,
    )
    ax.grid(axis="y", alpha=0.3)
    ax.set_axisbelow(True)
    handles = [Line2D([], [], marker="o", ls="", color=REMOVED, markeredgecolor="white", label="removed")]
    if any(v.numel() <= 64 for v in values):
        handles.insert(0, Line2D([], [], marker="o", ls="", color="#5a6b7d", label="kept"))
    ax.legend(handles=handles, loc="best", fontsize=8, frameon=True, framealpha=0.8)
    _layer_axis(ax, n)


def _layer_bars(ax, per_layer: dict[int, torch.Tensor], plan: PrunePlan, n: int) -> None:
    """One importance per layer (layer scope): a bar each, dropped layers in the removed colour."""
    layers = list(per_layer)
    dropped = set(plan.dropped_layers)
    colors = [REMOVED if i in dropped else KEPT for i in layers]
    ax.bar(layers, [per_layer[i][0].item() for i in layers], color=colors, width=0.8)
    ax.set_ylabel("importance")
    ax.set_title("whole layers: importance per layer", fontsize=10, loc="left")
    ax.grid(axis="y", alpha=0.3)
    ax.set_axisbelow(True)
    handles = [Patch(color=KEPT, label="kept"), Patch(color=REMOVED, label="dropped")]
    ax.legend(handles=handles, loc="lower right", ncol=2, fontsize=8, frameon=False, bbox_to_anchor=(1.0, 1.0))
    _layer_axis(ax, n)


def _grouped_bars(ax, labels: list[str], metrics: dict[str, dict], pick) -> None:
    sections = list(metrics)
    width = 0.8 / len(sections)
    for j, s in enumerate(sections):
        xs, ys = [], []
        for i, lab in enumerate(labels):
            v = pick(metrics[s], lab)
            if v is not None:
                xs.append(i + (j - (len(sections) - 1) / 2) * width)
                ys.append(v)
        bars = ax.bar(xs, ys, width=width, color=SECTION_COLORS.get(s, None), label=s)
        ax.bar_label(bars, fmt="%.3g", fontsize=7, padding=1)
    ax.set_xticks(range(len(labels)))
    ax.set_xticklabels(labels, rotation=20 if len(labels) > 4 else 0, ha="right" if len(labels) > 4 else "center")
    ax.grid(axis="y", alpha=0.3)
    ax.set_axisbelow(True)


def plot_metrics(metrics: dict[str, dict], path: Path) -> Path | None:
    """Grouped bars per section (before / after / recovered): perplexity per dataset, accuracy per task."""
    datasets = list(dict.fromkeys(d for m in metrics.values() for d in m.get("ppl", {})))
    tasks = list(dict.fromkeys(t for m in metrics.values() for t in m.get("tasks", {})))
    panels = []
    if datasets:
        panels.append("ppl")
    if tasks:
        panels += ["acc", "acc_norm"]
    if not panels:
        return None
    n_labels = {"ppl": len(datasets), "acc": len(tasks) + (len(tasks) > 1), "acc_norm": len(tasks) + (len(tasks) > 1)}
    ratios = [max(2.6, 0.8 + 0.75 * n_labels[p] * max(1, len(metrics)) / 2) for p in panels]
    fig, axes = plt.subplots(
        1, len(panels), figsize=(max(sum(ratios) + 0.6, 5.0), 4.6), squeeze=False, gridspec_kw={"width_ratios": ratios}
    )
    for ax, panel in zip(axes[0], panels, strict=True):
        if panel == "ppl":
            _grouped_bars(ax, datasets, metrics, lambda m, d: m.get("ppl", {}).get(d))
            values = [v for m in metrics.values() for v in m.get("ppl", {}).values()]
            log = bool(values) and max(values) / max(min(values), 1e-9) > 20
            if log:
                ax.set_yscale("log")
                ax.set_ylim(top=max(values) * 3)
            else:
                ax.set_ylim(0, max(values) * 1.15)
            ax.set_ylabel(f"perplexity ({'log' if log else 'linear'} scale)")
            ax.set_title("perplexity (lower is better)", fontsize=9)
        else:
            labels = tasks + (["mean"] if len(tasks) > 1 else [])
            mean_key = "mean_acc" if panel == "acc" else "mean_acc_norm"

            def pick(m, t, panel=panel, mean_key=mean_key):
                return m.get(mean_key) if t == "mean" else m.get("tasks", {}).get(t, {}).get(panel)

            _grouped_bars(ax, labels, metrics, pick)
            ax.set_ylim(0, 1.08)
            ax.set_ylabel(f"{panel} (linear scale)")
            ax.set_title(f"zero-shot {panel}", fontsize=9)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=len(labels), fontsize=8, frameon=False)
    title = " vs ".join(SECTION_TITLES.get(s, s) for s in metrics)
    fig.suptitle(title[0].upper() + title[1:], fontsize=12, x=0.01, ha="left")
    fig.tight_layout(rect=(0, 0.06, 1, 1))  # the legend sits below the panels, never over the title
    return _save(fig, path)


def _save(fig, path: Path) -> Path:
    fig.savefig(path, dpi=DPI, format="png")
    plt.close(fig)
    return path
