"""Structured pruning of a model in memory: groups -> calibration -> scores -> plan -> reconstruction -> surgery.

`plan_pruning(model, tokenizer, cfg)` scores the model and makes the plan (the model is not changed);
`prune_model` also refits and physically prunes it. Saving the result and writing the run folder is
`llmprune.jobs.run_recipe`'s business (and `llmprune.surgery.save_pruned`'s).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch
from torch import nn

from llmprune.arch import WRITERS, describe
from llmprune.errors import LlmpruneError
from llmprune.graph import build_groups, parse_layer_range
from llmprune.models.params import count_params
from llmprune.prune.config import CalibConfig, PruneConfig
from llmprune.prune.costs import unit_costs
from llmprune.prune.plan import BaseShape, PrunePlan
from llmprune.prune.planner import make_plan

SCOPE_KINDS = {"block": {"mlp_channel", "attn_head", "kv_group"}, "channel": {"hidden"}, "layer": {"layer"}}


@dataclass
class PruneResult:
    plan: PrunePlan
    params_before: int
    params_after: int
    seconds: float
    scores: dict[str, torch.Tensor] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def ratio_removed(self) -> float:
        return 1 - self.params_after / self.params_before

    def report(self) -> dict:
        return {
            "params_before": self.params_before,
            "params_after": self.params_after,
            "ratio_removed": self.ratio_removed,
            "seconds": round(self.seconds, 3),
            "timings": {k: round(v, 3) for k, v in self.timings.items()},
        }


def layer_ids(cfg: PruneConfig, num_layers: int) -> list[int]:
    if cfg.layers is None:
        return list(range(num_layers))
    return list(parse_layer_range(cfg.layers, num_layers))


def plan_pruning(
    model: nn.Module, tokenizer, cfg: PruneConfig, *, batches: torch.Tensor | None = None, progress: bool = True
) -> PruneResult:
    """Score the model and make the plan (the model is not changed). `batches` (N, L token ids) replaces
    the calibration windows that `cfg.calib` would draw."""
    from llmprune.importance.methods import importance_method
    from llmprune.importance.score import score_groups

    t0 = time.perf_counter()
    timings: dict[str, float] = {}
    layout = describe(model)
    base = BaseShape.from_layout(layout)
    layers = layer_ids(cfg, base.num_layers)
    if cfg.uniform and cfg.scope == "block" and len(layers) != base.num_layers:
        raise LlmpruneError("--uniform prunes every layer alike: drop --layers (or set layers to the full range)")
    groups = build_groups(model, layers=range(layers[0], layers[-1] + 1), kinds=SCOPE_KINDS[cfg.scope], layout=layout)
    groups = [g for g in groups if g.layer is None or g.layer in set(layers)]
    costs = unit_costs(model, layout)
    timings["graph"] = time.perf_counter() - t0
    if batches is None and importance_method(cfg.importance).needs_calibration:
        t = time.perf_counter()
        batches = _windows(tokenizer, cfg.calib)
        timings["calibration_data"] = time.perf_counter() - t
    t = time.perf_counter()
    scores = score_groups(
        model,
        groups,
        batches,
        method=cfg.importance,
        aggregate_by=cfg.aggregate,
        seed=cfg.calib.seed,
        progress=progress,
    )
    timings["scores"] = time.perf_counter() - t
    params_before = count_params(model)
    meta = {"config": cfg.model_dump(), "model": getattr(model.config, "name_or_path", "") or ""}
    plan = make_plan(
        base, scores, cfg, target=int(round(cfg.ratio * params_before)), costs=costs, layers=layers, meta=meta
    )
    return PruneResult(plan, params_before, params_before, time.perf_counter() - t0, scores, timings)


def _windows(tokenizer, c: CalibConfig) -> torch.Tensor:
    """The calibration windows that `c` describes."""
    from llmprune.data import calibration_batches

    return calibration_batches(tokenizer, c.source, samples=c.samples, seq_len=c.seq_len, seed=c.seed)


def prune_model(
    model: nn.Module, tokenizer, cfg: PruneConfig, *, progress: bool = True, loader=None, sink=None
) -> PruneResult:
    """Score, plan and physically prune `model` in place with the engine `cfg.engine` names. `loader`
    (`llmprune.models.lazy.LayerLoader`, offload): the model's layers are read one at a time; `sink`
    (`llmprune.surgery.stream.LayerSink`, with a loader): and written out pruned, one at a time, the
    model's layers left on the meta device (save it with `save_streamed`)."""
    if loader is not None and cfg.engine != "sequential":
        raise LlmpruneError("only the sequential engine reads layers one at a time (offload)")
    kwargs = {"loader": loader, "sink": sink} if loader is not None else {}
    return ENGINES[cfg.engine](model, tokenizer, cfg, progress=progress, **kwargs)


def _taylor(model: nn.Module, tokenizer, cfg: PruneConfig, *, progress: bool = True) -> PruneResult:
    """Engine `taylor`: one gradient pass scores every unit, the planner ranks them, the readers of removed
    units are refit by least squares on the dense model's activations, surgery removes them."""
    from llmprune.surgery import prune_

    t0 = time.perf_counter()
    result = plan_pruning(model, tokenizer, cfg, progress=progress)
    if cfg.reconstruct and cfg.scope == "block":
        from llmprune.prune.reconstruct import reconstruct_

        t = time.perf_counter()
        batches = _windows(tokenizer, cfg.reconstruct_calib)
        reconstruct_(model, result.plan, batches, damp=cfg.damp, progress=progress)
        result.timings["reconstruct"] = time.perf_counter() - t
    t = time.perf_counter()
    prune_(model, result.plan)
    result.timings["surgery"] = time.perf_counter() - t
    result.params_after = count_params(model)
    result.seconds = time.perf_counter() - t0
    return result


def _sequential(
    model: nn.Module, tokenizer, cfg: PruneConfig, *, progress: bool = True, loader=None, sink=None
) -> PruneResult:
    """Engine `sequential` (`llmprune.prune.sequential`): allocation, then the layer-by-layer pass, then
    surgery. The biases the refit adds to every layer's o_proj / down_proj are counted in the target."""
    import dataclasses

    from llmprune.prune.allocate import allocate, error_scores, output_fisher
    from llmprune.prune.sequential import sequential_prune_
    from llmprune.surgery import prune_
    from llmprune.surgery.shapes import sync_config_

    t0 = time.perf_counter()
    timings: dict[str, float] = {}
    layout = describe(model)
    base = BaseShape.from_layout(layout)
    layers = layer_ids(cfg, base.num_layers)
    costs = unit_costs(model, layout)
    params_before = count_params(model)
    added = [r for r in WRITERS if cfg.bias and not layout.has_bias(r)]
    target = int(round(cfg.ratio * params_before)) + len(added) * base.hidden_size * base.num_layers
    batches = _windows(tokenizer, cfg.sequential_calib)
    timings["calibration_data"] = time.perf_counter() - t0
    t = time.perf_counter()
    scores, fisher = None, None
    if cfg.allocation == "taylor":
        scores = plan_pruning(model, tokenizer, cfg.model_copy(update={"engine": "taylor"}), progress=progress).scores
    elif cfg.allocation in ("fisher", "error", "error-std"):
        if cfg.allocation == "fisher":
            grads = _windows(tokenizer, cfg.calib)
            fisher = output_fisher(model, layout, grads, layers, progress=progress)
        standardise = cfg.allocation == "error-std"
        scores = error_scores(
            model,
            layout,
            batches,
            layers,
            standardise=standardise,
            damp=cfg.damp,
            progress=progress,
            loader=loader,
            fisher=fisher,
        )
    counts = allocate(base, cfg, target=target, costs=costs, layers=layers, scores=scores)
    timings["allocation"] = time.perf_counter() - t
    t = time.perf_counter()
    plan = sequential_prune_(model, batches, counts, cfg, progress=progress, loader=loader, fisher=fisher, sink=sink)
    timings["sequential"] = time.perf_counter() - t
    meta = {"config": cfg.model_dump(), "model": getattr(model.config, "name_or_path", "") or ""}
    plan = dataclasses.replace(plan, meta=meta)
    t = time.perf_counter()
    if sink is None:
        prune_(model, plan)
    else:  # every layer was pruned as it was written out: only the config is left
        sync_config_(model)
    timings["surgery"] = time.perf_counter() - t
    return PruneResult(plan, params_before, count_params(model), time.perf_counter() - t0, scores or {}, timings)


ENGINES = {"taylor": _taylor, "sequential": _sequential}
