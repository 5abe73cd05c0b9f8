"""Scores + target ratio + constraints -> PrunePlan.

The ratio is a fraction of the model's *total* parameters (tied embedding counted once). Each removable
unit has a parameter cost read off its group (`llmprune.prune.costs`); units are removed, least
important per parameter first, until the target is met. Scores are keyed by group id
(`llmprune.graph.group_id`):

- block scope: MLP channels, and attention heads in *slots*: slot k of a layer removes the k-th least
  important query head of every KV group, so every KV group keeps the same number of query heads (GQA
  stays loadable: num_attention_heads remains a multiple of num_key_value_heads). `ranking=layer` removes
  the same fraction in every layer of the range (LLM-Pruner); `ranking=global` ranks units across layers.
- channel scope: hidden channels, model-wide; kept width a multiple of `round_to` and of the head count.
- layer scope: whole decoder layers, least important first.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from llmprune.errors import LlmpruneError
from llmprune.graph.nodes import group_id
from llmprune.prune.config import PruneConfig
from llmprune.prune.costs import Costs
from llmprune.prune.plan import BaseShape, LayerPlan, PrunePlan


def _round_keep(keep: int, total: int, multiple: int) -> int:
    """Round a kept width to the nearest multiple (at least one multiple, at most `total`)."""
    if multiple <= 1:
        return keep
    r = max(multiple, int(round(keep / multiple)) * multiple)
    return min(r, total)


def make_plan(
    base: BaseShape,
    scores: dict[str, torch.Tensor],
    cfg: PruneConfig,
    *,
    target: int,
    costs: Costs,
    layers: list[int],
    meta: dict | None = None,
) -> PrunePlan:
    """Build the plan that removes at least `target` parameters (as close as rounding allows)."""
    if cfg.scope == "block":
        lps = _block(base, scores, cfg, target, costs, layers)
        plan = PrunePlan(base=base, layers=tuple(lps), meta=dict(meta or {}))
    elif cfg.scope == "channel":
        plan = PrunePlan(base=base, hidden_channels=_channel(base, scores, cfg, target, costs), meta=dict(meta or {}))
    else:
        plan = PrunePlan(base=base, layers=tuple(_layer(base, scores, target, costs, layers)), meta=dict(meta or {}))
    plan.validate()
    return plan


@dataclass(frozen=True)
class AttnStep:
    """One removable attention unit of a layer, in removal order."""

    score: float
    cost: int
    heads: tuple[int, ...]
    kv_heads: tuple[int, ...] = ()


def attention_steps(base: BaseShape, scores: dict, layer: int, costs: Costs, unit: str, limit: float) -> list[AttnStep]:
    """Removal steps for one layer. `slot`: the k-th weakest query head of every KV group (GQA);
    `kv`: a whole KV group with its query heads (the only choice for multi-head attention)."""
    g, kv, shape = base.group_size, base.num_kv_heads, base.layer_shape
    if unit == "auto":
        unit = "kv" if g == 1 else "slot"
    if unit == "slot":
        if g == 1:
            raise LlmpruneError("attention unit 'slot' needs grouped-query attention; use 'kv' for this model")
        per_group = scores[group_id("attn_head", layer)].double().view(kv, g)  # KV group by KV group
        sorted_scores, order = per_group.sort(dim=1)
        order = order + (torch.arange(kv) * g).view(-1, 1)
        n = min(g - 1, int(limit * g))
        return [
            AttnStep(sorted_scores[:, k].sum().item(), costs.head * kv, tuple(sorted(order[:, k].tolist())))
            for k in range(n)
        ]
    if unit != "kv":
        raise LlmpruneError(f"unknown attention unit {unit!r}; choose auto, slot or kv")
    s = scores[group_id("kv_group", layer)].double()
    n = min(kv - 1, int(limit * kv))
    return [
        AttnStep(s[k].item(), costs.head * g + costs.kv_extra, tuple(shape.query_heads(k)), (k,))
        for k in s.argsort()[:n].tolist()
    ]


def _block(base, scores, cfg, target, costs, layers) -> list[LayerPlan]:
    if not (cfg.prune_heads or cfg.prune_mlp):
        raise LlmpruneError("block scope with prune_heads=false and prune_mlp=false removes nothing")
    max_mlp = min(base.intermediate_size - 1, int(cfg.max_layer_ratio * base.intermediate_size))
    mlp_order = {i: scores[group_id("mlp_channel", i)].argsort() for i in layers} if cfg.prune_mlp else {}
    steps = {
        i: attention_steps(base, scores, i, costs, cfg.attn_unit, cfg.max_layer_ratio) if cfg.prune_heads else []
        for i in layers
    }
    mlp_n = dict.fromkeys(layers, 0)
    attn_n = dict.fromkeys(layers, 0)
    same_heads = cfg.prune_heads and base.family.config_heads  # Phi-3: every layer keeps the same heads
    if same_heads and len(layers) != base.num_layers:
        raise LlmpruneError(
            f"{base.family} models keep the same attention heads in every layer: prune heads over all layers "
            "(drop --layers) or keep every head (--no-heads)"
        )
    if cfg.ranking == "layer" or cfg.uniform:
        _uniform_fraction(base, cfg, target, costs, layers, steps, mlp_n, attn_n, max_mlp)
    else:
        # candidates: (score per parameter, position in the layer's order, kind, layer)
        cands: list[tuple[float, int, str, int]] = []
        for i in layers:
            if cfg.prune_mlp:
                s = scores[group_id("mlp_channel", i)].double()
                for k, idx in enumerate(mlp_order[i][:max_mlp].tolist()):
                    cands.append((s[idx].item() / costs.mlp_channel, k, "mlp", i))
            if not same_heads:
                cands += [(step.score / step.cost, k, "attn", i) for k, step in enumerate(steps[i])]
        if same_heads:  # step k of every layer at once
            for k in range(min(len(steps[i]) for i in layers)):
                score, cost = (sum(getattr(steps[i][k], f) for i in layers) for f in ("score", "cost"))
                cands.append((score / cost, k, "attn_all", layers[0]))
        cands.sort(key=lambda c: (c[0], c[1]))
        removed = 0
        for _, k, kind, i in cands:
            if removed >= target:
                break
            if kind == "mlp":
                mlp_n[i] += 1
                removed += costs.mlp_channel
            elif kind == "attn_all" and k == attn_n[i]:
                for j in layers:
                    attn_n[j] += 1
                    removed += steps[j][k].cost
            elif kind == "attn" and k == attn_n[i]:  # attention steps go in order within a layer
                attn_n[i] += 1
                removed += steps[i][k].cost
        if removed < target:
            raise LlmpruneError(
                f"ratio {cfg.ratio} cannot be reached within layers {layers[0]}-{layers[-1]} without emptying "
                f"layers (max_layer_ratio={cfg.max_layer_ratio}); lower --ratio or widen --layers"
            )
    out = []
    for i in layers:
        n = mlp_n[i]
        if cfg.round_to > 1 and n:
            n = base.intermediate_size - _round_keep(base.intermediate_size - n, base.intermediate_size, cfg.round_to)
        mlp = tuple(sorted(mlp_order[i][:n].tolist())) if n else ()
        chosen = steps[i][: attn_n[i]]
        heads = tuple(sorted(h for st in chosen for h in st.heads))
        kv_heads = tuple(sorted(k for st in chosen for k in st.kv_heads))
        if mlp or heads:
            out.append(LayerPlan(layer=i, heads=heads, kv_heads=kv_heads, mlp_channels=mlp))
    return out


def _uniform_fraction(base, cfg, target, costs, layers, steps, mlp_n, attn_n, max_mlp) -> None:
    """Same fraction p of MLP channels and attention units in every layer (LLM-Pruner's per-layer ranking)."""
    n_layers = len(layers)
    n_steps = min(len(s) for s in steps.values())
    step_cost = steps[layers[0]][0].cost if n_steps else 0
    attn_total = (base.num_heads * costs.head + (base.num_kv_heads * costs.kv_extra)) if cfg.prune_heads else 0
    per_layer = (base.intermediate_size * costs.mlp_channel if cfg.prune_mlp else 0) + attn_total
    p = target / (n_layers * per_layer)
    units_per_layer = len(steps[layers[0]]) + 1 if cfg.prune_heads else 1
    k = min(n_steps, int(round(p * units_per_layer))) if cfg.prune_heads else 0
    if not cfg.prune_mlp:
        k = min(n_steps, math.ceil(target / (n_layers * step_cost))) if step_cost else 0
    if cfg.uniform and k:
        k = _stock_steps(base, steps[layers[0]], k)
    rest = target - n_layers * k * step_cost
    mlp = math.ceil(max(rest, 0) / (n_layers * costs.mlp_channel)) if cfg.prune_mlp else 0
    if mlp > max_mlp or (not cfg.prune_mlp and rest > 0):
        raise LlmpruneError(
            f"ratio {cfg.ratio} would remove more than max_layer_ratio={cfg.max_layer_ratio} of each layer in "
            f"{layers[0]}-{layers[-1]} (it would empty layers); lower --ratio or widen --layers"
        )
    for i in layers:
        mlp_n[i], attn_n[i] = mlp, k


def _stock_steps(base: BaseShape, layer_steps: list[AttnStep], k: int) -> int:
    """The number of attention steps closest to `k` (fewer first) whose head counts a stock config accepts
    (transformers 5 rejects hidden_size % num_attention_heads != 0); 0 always qualifies."""
    valid = set(base.head_options())

    def counts(n: int) -> tuple[int, int]:
        chosen = layer_steps[:n]
        heads = base.num_heads - sum(len(st.heads) for st in chosen)
        return heads, base.num_kv_heads - sum(len(st.kv_heads) for st in chosen)

    for n in sorted(range(len(layer_steps) + 1), key=lambda n: (abs(n - k), n)):
        if n == 0 or counts(n) in valid:
            return n
    return 0


def _channel(base, scores, cfg, target, costs) -> tuple[int, ...]:
    s = scores[group_id("hidden")]
    n = math.ceil(target / costs.hidden_channel)
    keep = base.hidden_size - n
    multiple = math.lcm(cfg.round_to, base.num_heads)  # keeps hidden_size % num_heads == 0 for stock configs
    keep = max(multiple, (keep // multiple) * multiple)
    if keep >= base.hidden_size or n >= base.hidden_size * cfg.max_layer_ratio:
        raise LlmpruneError(f"ratio {cfg.ratio} removes too many hidden channels; lower --ratio")
    return tuple(sorted(s.argsort()[: base.hidden_size - keep].tolist()))


def _layer(base, scores, target, costs, layers) -> list[LayerPlan]:
    n = math.ceil(target / costs.layer)
    if n >= len(layers):
        raise LlmpruneError(f"ratio removes {n} of the {len(layers)} layers in range; lower --ratio or widen --layers")
    layer_scores = torch.stack([scores[group_id("layer", i)].double().sum() for i in layers])
    drop = sorted(layers[i] for i in layer_scores.argsort()[:n].tolist())
    return [LayerPlan(layer=i, drop=True) for i in drop]
