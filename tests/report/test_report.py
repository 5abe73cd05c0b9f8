"""`llmprune report`: report.md tables and valid PNGs from a real (tiny) run folder; clear errors."""

from __future__ import annotations

import json

import pytest

from llmprune.errors import LlmpruneError
from llmprune.prune.plan import BaseShape, LayerPlan, PrunePlan
from llmprune.report import load_run, write_report
from llmprune.report.tables import layer_widths, metrics_rows
from tests.eval.helpers import run_cli

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def run_dir(tiny_dir, tiny_text_data, tmp_path):
    """A run folder made by `run_recipe` on a tiny GQA llama, with perplexity and one zero-shot task."""
    from llmprune.jobs import run_recipe
    from llmprune.recipes import recipe_from_dict

    (tiny_text_data / "tasks").mkdir()
    rows = [{"context": "t3 t4 t5", "choices": [" t6", " t7 t8"], "label": i % 2} for i in range(6)]
    (tiny_text_data / "tasks" / "toy.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    src = tiny_dir("llama", heads=4, kv_heads=2, num_hidden_layers=4, max_position_embeddings=128)
    recipe = recipe_from_dict(
        {
            "model": str(src),
            "prune": {
                "ratio": 0.25,
                "calib": {"samples": 4, "seq_len": 16},
                "reconstruct_calib": {"samples": 8, "seq_len": 16},
            },
            "eval": {"max_windows": 4, "seq_len": 16, "tasks": ["toy"]},
        }
    )
    out = tmp_path / "run"
    run_recipe(recipe, out, progress=False)
    return out


def _check_png(path):
    import matplotlib.image as mpimg

    assert path.read_bytes()[:8] == PNG_MAGIC
    img = mpimg.imread(path)  # decodes the whole file
    assert img.shape[0] > 200 and img.shape[1] > 300


def test_report_from_arun_cli(run_dir, capsys):
    assert run_cli(["report", str(run_dir)]) in (None, 0)
    out = run_dir / "report"
    for name in ("widths.png", "importance.png", "metrics.png"):
        _check_png(out / name)
        assert f"]({name})" in (out / "report.md").read_text()
    md = (out / "report.md").read_text()
    report = json.loads((run_dir / "report.json").read_text())
    assert f"| parameters | {report['params_before']:,} | {report['params_after']:,} |" in md
    assert "| metric | before | after | after - before |" in md
    ppl_b, ppl_a = report["before"]["ppl"]["wikitext2"], report["after"]["ppl"]["wikitext2"]
    assert f"| ppl wikitext2 | {ppl_b:.4g} | {ppl_a:.4g} | {ppl_a - ppl_b:+.4g} |" in md
    assert "| toy acc |" in md and "| toy acc_norm |" in md and "| mean acc |" in md
    plan = load_run(run_dir).plan
    assert "| layer | heads | KV heads | MLP channels | MLP kept |" in md
    for w in layer_widths(plan):
        assert f"| {w.layer} | {w.kept_heads}/4 | {w.kept_kv_heads}/2 | {w.kept_mlp}/48 |" in md
    assert "wrote" in capsys.readouterr().err
    assert not [p for p in run_dir.iterdir() if p.name.startswith(".report.tmp")]  # nothing half-written


def test_recovered_section_and_bench_json(run_dir, tmp_path):
    report = json.loads((run_dir / "report.json").read_text())
    report["recovered"] = {"steps": 10, "eval": {"ppl": {"wikitext2": 50.0}, "mean_acc": 0.75}}
    (run_dir / "report.json").write_text(json.dumps(report))
    info = {
        "spec": "x",
        "params": 80,
        "disk_bytes": 2**20,
        "peak_memory_bytes": 2**21,
        "prefill_s": {"1": 0.01},
        "decode_tokens_per_s": {"1": 120.0},
    }
    bench = {
        "config": {"prompt_len": 8, "new_tokens": 4, "repeats": 3, "dtype": "float32"},
        "device": "cpu",
        "threads": 1,
        "models": {"model": info, "baseline": {**info, "spec": "y", "decode_tokens_per_s": {"1": 100.0}}},
        "ratios": {
            "params": 1.0,
            "disk_bytes": 1.0,
            "peak_memory_bytes": 1.0,
            "prefill_s": {"1": 1.0},
            "prefill_speedup": {"1": 1.0},
            "decode_speedup": {"1": 1.2},
        },
    }
    (run_dir / "bench.json").write_text(json.dumps(bench))
    md = write_report(run_dir, tmp_path / "elsewhere").read_text()
    assert "| metric | before | after | recovered | recovered - before |" in md
    assert "| ppl wikitext2 |" in md and "| 50 |" in md
    assert "## Speed and size" in md and "| decode tokens/s b1 | 120.0 | 100.0 | 1.200x speedup |" in md
    _check_png(tmp_path / "elsewhere" / "metrics.png")


def test_layer_scope_run_marks_dropped_layers(tiny_dir, tiny_text_data, tmp_path):
    from llmprune.jobs import run_recipe
    from llmprune.recipes import recipe_from_dict

    src = tiny_dir("qwen2", heads=4, kv_heads=2, num_hidden_layers=4)
    recipe = recipe_from_dict(
        {"model": str(src), "prune": {"ratio": 0.3, "scope": "layer", "importance": "magnitude"}, "eval": None}
    )
    run_recipe(recipe, tmp_path / "run", progress=False)
    md = write_report(tmp_path / "run").read_text()
    assert "| dropped | dropped | dropped |" in md and "metrics.png" not in md
    _check_png(tmp_path / "run" / "report" / "widths.png")


def test_metrics_rows_by_hand():
    metrics = {
        "before": {"ppl": {"wikitext2": 20.0}, "tasks": {"piqa": {"acc": 0.6, "acc_norm": 0.62}}, "mean_acc": 0.6},
        "after": {"ppl": {"wikitext2": 25.0}, "tasks": {"piqa": {"acc": 0.55, "acc_norm": 0.6}}, "mean_acc": 0.55},
    }
    headers, rows = metrics_rows(metrics)
    assert headers == ["metric", "before", "after", "after - before"]
    assert rows == [
        ["ppl wikitext2", 20.0, 25.0, "+5"],
        ["piqa acc", 0.6, 0.55, "-0.05"],
        ["piqa acc_norm", 0.62, 0.6, "-0.02"],
        ["mean acc", 0.6, 0.55, "-0.05"],
    ]


def test_layer_widths_from_a_plan():
    base = BaseShape("llama", 3, 64, 8, 4, 8, 100)
    plan = PrunePlan(
        base, (LayerPlan(0, heads=(0, 2, 4, 6)), LayerPlan(1, mlp_channels=tuple(range(30))), LayerPlan(2, drop=True))
    )
    w = layer_widths(plan)
    assert [(x.kept_heads, x.kept_kv_heads, x.kept_mlp, x.dropped) for x in w] == [
        (4, 4, 100, False),
        (8, 4, 70, False),
        (0, 0, 0, True),
    ]


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        ("missing", "run folder not found"),
        ("file", "is a file"),
        ("empty", "is not a run folder: it has no report.json"),
        ("no_plan", "it has no plan.json"),
        ("bad_json", "report.json is not valid JSON"),
        ("not_ours", "is not a valid run report: params_before: Field required"),
    ],
)
def test_bad_run_dir_is_a_clear_error(tmp_path, setup, message, capsys):
    d = tmp_path / "run"
    if setup == "file":
        d.write_text("x")
    elif setup != "missing":
        d.mkdir()
        if setup != "empty":
            (d / "report.json").write_text({"bad_json": "{oops", "not_ours": "{}"}.get(setup, '{"params_before": 1}'))
        if setup in ("bad_json", "not_ours"):
            (d / "plan.json").write_text("{}")
    assert run_cli(["report", str(d)]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    with pytest.raises(LlmpruneError):
        load_run(d)


def test_importance_plot_draws_every_removed_unit_over_the_boxes(monkeypatch, tmp_path):
    import torch

    from llmprune.report import plots

    figures = []
    monkeypatch.setattr(plots, "_save", lambda fig, path: figures.append(fig) or path)
    base = BaseShape("llama", 3, 64, 6, 2, 8, 40)  # GQA: 3 query heads per KV head
    layers = tuple(LayerPlan(layer=i, heads=(0, 3), mlp_channels=tuple(range(i, 12))) for i in range(3))
    plan = PrunePlan(base=base, layers=layers, meta={"config": {"engine": "taylor", "ranking": "global"}})
    g = torch.Generator().manual_seed(0)
    scores = {
        f"layers.{i}.{k}": torch.rand(n, generator=g) + 0.5
        for i in range(3)
        for k, n in [("attn_head", 6), ("mlp_channel", 40)]
    }
    scores["layers.1.attn_head"][:] = 0.7  # equal scores: the dots would coincide, the count still says it
    plots.plot_importance(scores, plan, tmp_path / "importance.png")
    heads_ax, mlp_ax = figures[0].axes[:2]
    for ax, per_layer in [(heads_ax, 2), (mlp_ax, None)]:
        boxes = max(p.get_zorder() for p in ax.patches)
        removed = [
            c
            for c in ax.collections
            if tuple(c.get_facecolor()[0][:3]) == plots.matplotlib.colors.to_rgb(plots.REMOVED)
        ]
        assert removed and min(c.get_zorder() for c in removed) > boxes  # drawn on top
        drawn = sum(len(c.get_offsets()) for c in removed)
        assert drawn == sum(len(lp.heads) if per_layer else len(lp.mlp_channels) for lp in layers)
        counts = [t.get_text() for t in ax.texts]
        assert counts == [f"-{len(lp.heads) if per_layer else len(lp.mlp_channels)}" for lp in layers]
    assert heads_ax.get_ylabel() == "importance (linear scale)"
    caption = "\n".join(t.get_text() for t in figures[0].texts)
    assert "slots" in caption and "3 query heads per KV head" in caption and "log when" in caption


def test_metrics_plot_states_its_scales(monkeypatch, tmp_path):
    from llmprune.report import plots

    figures = []
    monkeypatch.setattr(plots, "_save", lambda fig, path: figures.append(fig) or path)
    task = {"acc": 0.5, "acc_norm": 0.6}
    metrics = {"before": {"ppl": {"wikitext2": 10.0}, "tasks": {"t": task}}, "after": {"ppl": {"wikitext2": 500.0}}}
    plots.plot_metrics(metrics, tmp_path / "m.png")
    plots.plot_metrics(
        {"before": {"ppl": {"wikitext2": 10.0}}, "after": {"ppl": {"wikitext2": 12.0}}}, tmp_path / "n.png"
    )
    labels = [ax.get_ylabel() for ax in figures[0].axes] + [figures[1].axes[0].get_ylabel()]
    assert labels == [
        "perplexity (log scale)",
        "acc (linear scale)",
        "acc_norm (linear scale)",
        "perplexity (linear scale)",
    ]
