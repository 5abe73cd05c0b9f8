"""Scores + target ratio + constraints -> PrunePlan.

The ratio is a fraction of the model's *total* parameters (tied embedding counted once). Each removable
unit has a parameter cost derived from the shapes; units are removed, least important per parameter
first, until the target is met:

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

from llmprune.config import PruneConfig
from llmprune.errors import LlmpruneError
from llmprune.plan import BaseShape, LayerPlan, PrunePlan


@dataclass(frozen=True)
class Costs:
    mlp_channel: int
    head: int  # one query head (q rows + o columns)
    kv_extra: int  # one KV head's own k and v rows (on top of its query heads)
    hidden_channel: int
    layer: int


def unit_costs(base: BaseShape, *, tied: bool, vocab: int, attn_bias: bool, mlp_bias: bool) -> Costs:
    h, hd, i = base.hidden_size, base.head_dim, base.intermediate_size
    q, kv = base.num_heads * hd, base.num_kv_heads * hd
    mlp = 3 * h + (2 if mlp_bias else 0)  # gate row, up row, down column (+ gate/up bias)
    head = 2 * hd * h + (hd if attn_bias else 0)  # q rows, o columns (+ q bias)
    kv_extra = 2 * hd * h + (2 * hd if attn_bias else 0)  # k rows, v rows (+ biases)
    # one hidden channel: a column of q/k/v/gate/up, a row of o/down (+ their biases), two norm weights
    per_layer_hidden = (q + 2 * kv + 2 * i) + (q + i) + 2 + (1 if attn_bias else 0) + (1 if mlp_bias else 0)
    hidden = vocab * (1 if tied else 2) + base.num_layers * per_layer_hidden + 1  # + final norm
    attn = (q + 2 * kv) * h + q * h + ((q + 2 * kv) if attn_bias else 0)
    mlp_all = 3 * h * i + ((2 * i + h) if mlp_bias else 0)
    layer = attn + mlp_all + 2 * h
    return Costs(mlp_channel=mlp, head=head, kv_extra=kv_extra, hidden_channel=hidden, layer=layer)


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
    g, kv = base.group_size, base.num_kv_heads
    if unit == "auto":
        unit = "kv" if g == 1 else "slot"
    if unit == "slot":
        if g == 1:
            raise LlmpruneError("attention unit 'slot' needs grouped-query attention; use 'kv' for this model")
        per_group = scores[f"layers.{layer}.attn_head"].double().view(kv, g)
        sorted_scores, order = per_group.sort(dim=1)
        order = order + (torch.arange(kv) * g).view(-1, 1)
        n = min(g - 1, int(limit * g))
        return [
            AttnStep(sorted_scores[:, k].sum().item(), costs.head * kv, tuple(sorted(order[:, k].tolist())))
            for k in range(n)
        ]
    if unit != "kv":
        raise LlmpruneError(f"unknown attention unit {unit!r}; choose auto, slot or kv")
    s = scores[f"layers.{layer}.kv_group"].double()
    n = min(kv - 1, int(limit * kv))
    return [
        AttnStep(s[k].item(), costs.head * g + costs.kv_extra, tuple(range(k * g, (k + 1) * g)), (k,))
        for k in s.argsort()[:n].tolist()
    ]


def _block(base, scores, cfg, target, costs, layers) -> list[LayerPlan]:
    if not (cfg.prune_heads or cfg.prune_mlp):
        raise LlmpruneError("block scope with prune_heads=false and prune_mlp=false removes nothing")
    max_mlp = min(base.intermediate_size - 1, int(cfg.max_layer_ratio * base.intermediate_size))
    mlp_order = {i: scores[f"layers.{i}.mlp_channel"].argsort() for i in layers} if cfg.prune_mlp else {}
    steps = {
        i: attention_steps(base, scores, i, costs, cfg.attn_unit, cfg.max_layer_ratio) if cfg.prune_heads else []
        for i in layers
    }
    mlp_n = dict.fromkeys(layers, 0)
    attn_n = dict.fromkeys(layers, 0)
    if cfg.ranking == "layer" or cfg.uniform:
        _uniform_fraction(base, cfg, target, costs, layers, steps, mlp_n, attn_n, max_mlp)
    else:
        # candidates: (score per parameter, position in the layer's order, kind, layer)
        cands: list[tuple[float, int, str, int]] = []
        for i in layers:
            if cfg.prune_mlp:
                s = scores[f"layers.{i}.mlp_channel"].double()
                for k, idx in enumerate(mlp_order[i][:max_mlp].tolist()):
                    cands.append((s[idx].item() / costs.mlp_channel, k, "mlp", i))
            for k, step in enumerate(steps[i]):
                cands.append((step.score / step.cost, k, "attn", i))
        cands.sort(key=lambda c: (c[0], c[1]))
        removed = 0
        for _, k, kind, i in cands:
            if removed >= target:
                break
            if kind == "mlp":
                mlp_n[i] += 1
                removed += costs.mlp_channel
            elif k == attn_n[i]:  # attention steps go in order within a layer
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
    from llmprune.surgery.shapes import uniform_head_options

    valid = set(uniform_head_options(base))

    def counts(n: int) -> tuple[int, int]:
        chosen = layer_steps[:n]
        heads = base.num_heads - sum(len(st.heads) for st in chosen)
        return heads, base.num_kv_heads - sum(len(st.kv_heads) for st in chosen)

    for n in sorted(range(len(layer_steps) + 1), key=lambda n: (abs(n - k), n)):
        if n == 0 or counts(n) in valid:
            return n
    return 0


def _channel(base, scores, cfg, target, costs) -> tuple[int, ...]:
    s = scores["hidden"]
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
    layer_scores = torch.stack([scores[f"layers.{i}.layer"].double().sum() for i in layers])
    drop = sorted(layers[i] for i in layer_scores.argsort()[:n].tolist())
    return [LayerPlan(layer=i, drop=True) for i in drop]
