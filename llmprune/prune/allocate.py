"""How many units each layer loses, for the sequential engine (see `llmprune.prune.sequential`).

Every allocation but `depth` makes unit scores keyed by group id and lets today's planner
(`llmprune.prune.planner.make_plan`) turn them into a plan, so ratios, GQA slots, `max_layer_ratio`,
`round_to`, `uniform` and `ranking: layer` mean what they mean for the Taylor engine. Only the per-layer
counts are kept: the sequential pass chooses which units itself.

- `taylor`: first-order Taylor scores (`cfg.importance` over `cfg.calib`), as the Taylor engine ranks;
- `error` / `error-std`: one pass over the dense model gathers the Gram matrix of every o_proj and
  down_proj input; each unit's score is the error its removal alone causes (`llmprune.prune.obs`),
  divided by the energy of that Linear's output (`error`: the share of the output lost) or by the mean
  score of its kind in its layer (`error-std`: FLAP's per-layer standardisation);
- `depth`: layer i of the range loses a fraction proportional to log(i - first + 2) (SlimGPT's
  log-increasing schedule), the same fraction of its attention units and its MLP channels, scaled to
  reach the target.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from tqdm.auto import tqdm

from llmprune.activations import Moments, capture_layer_inputs, layer_output, record_inputs
from llmprune.arch import WRITERS, Layout
from llmprune.errors import LlmpruneError
from llmprune.graph.nodes import group_id
from llmprune.models.lazy import LayerLoader
from llmprune.prune import obs
from llmprune.prune.config import PruneConfig
from llmprune.prune.costs import Costs
from llmprune.prune.plan import BaseShape
from llmprune.prune.planner import attention_steps, make_plan
from llmprune.prune.sequential import Counts, attention_unit, augmented_weight, counts_of


def output_fisher(
    model: nn.Module,
    layout: Layout,
    batches: torch.Tensor,
    layers: list[int],
    *,
    micro_batch: int = 8,
    progress: bool = True,
) -> dict[str, torch.Tensor]:
    """{Linear name: sum over calibration tokens of (dL/dy)^2 per output feature} of every o_proj and
    down_proj of `layers`: the diagonal Fisher of their outputs (L: the summed next-token loss)."""
    from llmprune.importance.collect import lm_loss

    names = [layout.proj(i, r) for i in layers for r in WRITERS]
    fisher = {n: torch.zeros(layout.hidden_size, dtype=torch.float64) for n in names}
    handles = []

    def hook(name):
        def on_grad(g: torch.Tensor) -> None:
            fisher[name].add_(g.detach().double().pow(2).sum((0, 1)).cpu())

        def on_forward(_m, _args, out):
            out.register_hook(on_grad)

        return on_forward

    embed = model.get_submodule(layout.family.embed)
    flags = {n: p.requires_grad for n, p in model.named_parameters()}
    was = model.training
    model.eval()
    try:
        for p in model.parameters():
            p.requires_grad_(False)
        embed.weight.requires_grad_(True)  # the graph reaches every layer's output, no weight gradient kept
        handles = [model.get_submodule(n).register_forward_hook(hook(n)) for n in names]
        device = next(model.parameters()).device
        for k in tqdm(range(0, batches.shape[0], micro_batch), desc="output fisher", disable=not progress):
            mb = batches[k : k + micro_batch].to(device)
            (lm_loss(model, mb) * mb[:, 1:].numel()).backward()
    finally:
        for h in handles:
            h.remove()
        embed.weight.grad = None
        for n, p in model.named_parameters():
            p.requires_grad_(flags[n])
        model.train(was)
    return fisher


@torch.no_grad()
def error_scores(
    model: nn.Module,
    layout: Layout,
    batches: torch.Tensor,
    layers: list[int],
    *,
    standardise: bool,
    damp: float,
    micro_batch: int = 8,
    progress: bool = True,
    loader: LayerLoader | None = None,
    fisher: dict[str, torch.Tensor] | None = None,
) -> dict[str, torch.Tensor]:
    """Error-aware score of every query head, KV group and MLP channel of `layers`, on the dense model
    (with a `loader`, each layer is read for its turn and released after it). With `fisher` (per Linear,
    `output_fisher`) each output feature's error is weighted by it: the second-order loss increase."""
    fam = layout.family
    paths = {"o": fam.proj_path("o"), "down": fam.proj_path("down")}
    stream = capture_layer_inputs(model, batches, micro_batch=micro_batch)
    decoder = model.get_submodule(fam.layers)
    scores: dict[str, torch.Tensor] = {}
    for i in tqdm(range(layers[-1] + 1), desc="error scores", unit="layer", disable=not progress):
        if loader is not None:
            loader.load(i)
        layer = decoder[i]
        stats = {p: Moments(layer.get_submodule(p).in_features) for p in paths.values()} if i in layers else {}
        with record_inputs(layer, stats):
            stream = [(layer_output(layer(h, **kw)), kw) for h, kw in stream] if i < layers[-1] else []
        for role, path in paths.items() if i in layers else ():
            weights = fisher.get(layout.proj(i, role)) if fisher is not None else None
            errors = _unit_errors(layer.get_submodule(path), stats[path], layout, i, role, damp, standardise, weights)
            scores |= {group_id(kind, i): s for kind, s in errors.items()}
        if loader is not None:
            loader.release(i)
    return scores


def _unit_errors(
    lin: nn.Linear,
    stat: Moments,
    layout: Layout,
    i: int,
    role: str,
    damp: float,
    standardise: bool,
    fisher: torch.Tensor | None = None,
) -> dict[str, torch.Tensor]:
    """{kind: each unit's error alone}: Fisher-weighted (the loss increase) when `fisher` is given, else
    relative to the Linear's output energy or (standardise) to the kind's mean."""
    gram = obs.augment(stat.xtx, stat.xsum, stat.count)
    cinv = obs.damped_inverse(gram, obs.ridge(stat.xtx, damp))
    w = augmented_weight(lin, bias=True)
    if fisher is not None:
        w = w * fisher.to(w.device).sqrt()[:, None]  # rows weighted: sum_o F_o * error_o
    energy = 1.0 if fisher is not None else float(torch.einsum("oi,ij,oj->", w, gram, w)) or 1.0
    if role == "o":
        hd, shape = layout.head_dim, layout.layers[i]
        heads = [list(range(h * hd, (h + 1) * hd)) for h in range(shape.heads)]
        kvs = [sum((heads[h] for h in shape.query_heads(k)), []) for k in range(shape.kv_heads)]
        kinds = {"attn_head": obs.block_errors(w, cinv, heads), "kv_group": obs.block_errors(w, cinv, kvs)}
    else:
        kinds = {"mlp_channel": obs.block_errors(w, cinv, [[c] for c in range(lin.in_features)])}
    return {kind: (s / (s.mean().clamp_min(1e-30) if standardise else energy)).cpu() for kind, s in kinds.items()}


def depth_counts(base: BaseShape, cfg: PruneConfig, target: int, costs: Costs, layers: list[int]) -> dict[int, Counts]:
    """Counts of the log-increasing schedule (module doc) removing at least `target` parameters."""
    unit = attention_unit(cfg, base)
    steps = len(attention_steps(base, _flat(base, layers), layers[0], costs, unit, cfg.max_layer_ratio))
    step_cost = costs.head * base.num_kv_heads if unit == "slot" else costs.head * base.group_size + costs.kv_extra
    weights = [math.log(i - layers[0] + 2) for i in layers]
    cap = cfg.max_layer_ratio

    def counts(scale: float) -> dict[int, Counts]:
        out = {}
        for i, w in zip(layers, weights, strict=True):
            frac = min(cap, scale * w)
            attn = min(steps, int(frac * (steps + 1))) if cfg.prune_heads else 0
            mlp = (
                min(int(cap * base.intermediate_size), int(round(frac * base.intermediate_size)))
                if cfg.prune_mlp
                else 0
            )
            out[i] = Counts(attn, mlp)
        return out

    def removed(c: dict[int, Counts]) -> int:
        return sum(x.attn * step_cost + x.mlp * costs.mlp_channel for x in c.values())

    lo, hi = 0.0, 1.0 / min(weights)
    if removed(counts(hi)) < target:
        raise LlmpruneError(
            f"ratio {cfg.ratio} cannot be reached within layers {layers[0]}-{layers[-1]} without emptying layers "
            f"(max_layer_ratio={cfg.max_layer_ratio}); lower --ratio or widen --layers"
        )
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if removed(counts(mid)) < target else (lo, mid)
    return counts(hi)


def _flat(base: BaseShape, layers: list[int]) -> dict[str, torch.Tensor]:
    """Uniform scores (only the number of attention steps a layer offers is read from them)."""
    return {group_id("attn_head", i): torch.ones(base.num_heads, dtype=torch.float64) for i in layers} | {
        group_id("kv_group", i): torch.ones(base.num_kv_heads, dtype=torch.float64) for i in layers
    }


def allocate(
    base: BaseShape,
    cfg: PruneConfig,
    *,
    target: int,
    costs: Costs,
    layers: list[int],
    scores: dict[str, torch.Tensor] | None,
) -> dict[int, Counts]:
    """Per-layer counts: from `scores` through the planner, or the depth schedule when `scores` is None."""
    if cfg.allocation == "depth":
        return depth_counts(base, cfg, target, costs, layers)
    if scores is None:
        raise LlmpruneError(f"allocation {cfg.allocation!r} needs unit scores")
    plan = make_plan(base, scores, cfg, target=target, costs=costs, layers=layers)
    return counts_of(plan, base, attention_unit(cfg, base))
