"""Engine `sequential`: prune the decoder layers one after the other, each on the activations that the
already-pruned layers before it produce, choosing units by the error their removal causes and refitting
what reads them (`llmprune.prune.obs`).

For each layer in the range, in order:

1. run it on its inputs (the calibration windows through the pruned layers before) and gather the Gram
   matrix of o_proj's inputs (and, with `compensate: dense`, their cross-products with the dense model's
   own o_proj outputs, from a second stream of activations through the unpruned layers);
2. remove the layer's attention units greedily — a GQA *slot* (the head of least error in every KV group)
   or a KV group with its query heads, as today's planner counts them — each step seeing the refit of the
   steps before (OBS updates), then refit o_proj's kept columns and a bias by least squares;
3. run the layer again (its attention now pruned) and do the same for the MLP channels and down_proj,
   in batches of channels with updates in between;
4. run the pruned layer to produce the next layer's inputs.

How many units each layer loses (the allocation) comes first, from one of
- `taylor`: today's planner on first-order Taylor scores (global ranking, importance per parameter);
- `error`: the same planner on each unit's error-aware score in the dense model, divided by the energy of
  its layer's output (a scale-free, additive "share of the layer output lost"), ranked globally;
- `error-std`: the error-aware scores standardised per layer and kind (divided by their mean: FLAP's
  per-layer standardisation);
- `depth`: a depth schedule (SlimGPT): layer i loses a fraction growing with log(i), the same fraction of
  attention units and MLP channels.
Removed units are zeroed and the refits written as the pass goes; `prune_` then removes them physically.
With offload and a sink (`llmprune.surgery.stream.LayerSink`) each layer is instead removed physically
(`prune_layer_`), written out and freed as soon as it is done.
The o_proj / down_proj biases the refit adds are real parameters, counted in the budget.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import nn
from tqdm.auto import tqdm

from llmprune.activations import Moments, capture_layer_inputs, layer_output, record_inputs, record_outputs
from llmprune.arch import WRITERS, Layout, describe
from llmprune.errors import LlmpruneError
from llmprune.graph.build import build_groups
from llmprune.graph.mask import unit_slices, zero_slices_
from llmprune.models.halfcpu import fp32_compute
from llmprune.models.lazy import LayerLoader
from llmprune.prune import obs
from llmprune.prune.config import PruneConfig
from llmprune.prune.plan import BaseShape, LayerPlan, PrunePlan

if TYPE_CHECKING:
    from llmprune.surgery.stream import LayerSink

MICRO_BATCH = 8  # calibration windows per layer forward


@dataclass(frozen=True)
class Counts:
    """How many units layer i loses: attention steps (slots or KV groups) and MLP channels."""

    attn: int
    mlp: int


def attention_unit(cfg: PruneConfig, base: BaseShape) -> str:
    unit = cfg.attn_unit
    if unit == "auto":
        unit = "kv" if base.group_size == 1 else "slot"
    if unit == "slot" and base.group_size == 1:
        raise LlmpruneError("attention unit 'slot' needs grouped-query attention; use 'kv' for this model")
    return unit


def counts_of(plan: PrunePlan, base: BaseShape, unit: str) -> dict[int, Counts]:
    """The per-layer counts a plan implies (what the sequential pass then chooses itself)."""
    out = {}
    for lp in plan.layers:
        steps = len(lp.kv_heads) if unit == "kv" else len(lp.heads) // base.num_kv_heads
        out[lp.layer] = Counts(steps, len(lp.mlp_channels))
    return out


def _stream(layer: nn.Module, inputs: list, *, keep: bool = True) -> list:
    """Run `layer` on every micro-batch; its outputs as the next layer's inputs (or [] when not kept)."""
    outputs = []
    with fp32_compute(layer):
        for hidden, kwargs in inputs:
            out = layer_output(layer(hidden, **kwargs))
            if keep:
                outputs.append((out, kwargs))
    return outputs


def _moments(layer: nn.Module, path: str, inputs: list, targets: list[torch.Tensor] | None) -> Moments:
    lin = layer.get_submodule(path)
    stat = Moments(lin.in_features, targets, lin.weight.device)
    with record_inputs(layer, {path: stat}):
        _stream(layer, inputs, keep=False)
    return stat


def augmented_weight(lin: nn.Linear, bias: bool) -> torch.Tensor:
    """[W b] in float64 (b zero where the Linear has none), or a copy of W alone without `bias`."""
    w = lin.weight.detach().double()
    if not bias:
        return w.clone()
    b = lin.bias.detach().double() if lin.bias is not None else torch.zeros(w.shape[0], dtype=torch.float64)
    return torch.cat([w, b.to(w.device)[:, None]], dim=1)


def _gram(stat: Moments, bias: bool) -> torch.Tensor:
    return obs.augment(stat.xtx, stat.xsum, stat.count) if bias else stat.xtx


def _write(lin: nn.Linear, weight: torch.Tensor, bias: bool) -> None:
    f = lin.in_features
    lin.weight.data.copy_(weight[:, :f].to(lin.weight.dtype))
    if bias:
        b = weight[:, f].to(lin.weight.dtype)
        if lin.bias is None:
            lin.bias = nn.Parameter(b.clone(), requires_grad=lin.weight.requires_grad)
        else:
            lin.bias.data.copy_(b)


def _refit_target(stat: Moments, lin: nn.Linear, bias: bool, dense: bool) -> torch.Tensor | None:
    """Cross-products [X 1]^T Y of the inputs with the targets (None: the layer's own outputs)."""
    if not dense:
        return None
    cross = stat.cross
    if bias:
        return cross
    b0 = lin.bias.detach().double() if lin.bias is not None else None
    xy = cross[:-1]
    return xy if b0 is None else xy - stat.xsum[:, None] * b0[None, :].to(xy.device)


def _select_heads(
    w: torch.Tensor, cinv: torch.Tensor, hd: int, heads: int, kv: int, steps: int, unit: str
) -> tuple[list[int], list[int]]:
    """Greedy attention steps on o_proj's columns: a slot removes the head of least error in every KV
    group (one per group); a KV unit removes the KV group of least error with all its query heads."""
    group = heads // kv
    alive = [list(range(k * group, (k + 1) * group)) for k in range(kv)]
    gone_heads: list[int] = []
    gone_kv: list[int] = []
    cols = lambda h: list(range(h * hd, (h + 1) * hd))  # noqa: E731
    for _ in range(steps):
        if unit == "slot":
            chosen = []
            for members in alive:
                errs = obs.block_errors(w, cinv, [cols(h) for h in members])
                chosen.append(members[int(errs.argmin())])
            for members, h in zip(alive, chosen, strict=True):
                members.remove(h)
        else:
            live = [k for k in range(kv) if k not in gone_kv]
            errs = obs.block_errors(w, cinv, [sum((cols(h) for h in alive[k]), []) for k in live])
            k = live[int(errs.argmin())]
            chosen, alive[k] = list(alive[k]), []
            gone_kv.append(k)
        obs.remove_(cinv, w, [c for h in chosen for c in cols(h)])
        gone_heads += chosen
    return sorted(gone_heads), sorted(gone_kv)


def _select_channels(w: torch.Tensor, cinv: torch.Tensor, n: int, width: int, batches: int = 16) -> list[int]:
    """Greedy MLP channels in about `batches` batches, the inverse Gram updated after each."""
    gone: list[int] = []
    alive = list(range(width))
    step = max(1, math.ceil(n / batches))
    while len(gone) < n:
        errs = obs.block_errors(w, cinv, [[c] for c in alive])
        take = [alive[i] for i in errs.argsort()[: min(step, n - len(gone))].tolist()]
        obs.remove_(cinv, w, take)
        gone += take
        taken = set(take)
        alive = [c for c in alive if c not in taken]
    return sorted(gone)


@dataclass
class SequentialPass:
    """The per-layer pass (see the module doc); `run` returns the plan of what it removed."""

    model: nn.Module
    layout: Layout
    base: BaseShape
    cfg: PruneConfig
    progress: bool = True
    loader: LayerLoader | None = None  # offload: layers read from the safetensors files when reached
    fisher: dict[str, torch.Tensor] | None = None  # output Fisher per Linear name (allocation fisher)
    sink: LayerSink | None = None  # offload: each finished layer is pruned, written out and freed

    def __post_init__(self) -> None:
        self._names = {id(m): n for n, m in self.model.named_modules()}
        if self.sink is not None and self.loader is None:
            raise LlmpruneError("a layer sink needs the offload loader (layers freed after writing)")

    def run(self, batches: torch.Tensor, counts: dict[int, Counts], layers: list[int]) -> list[LayerPlan]:
        cfg, lay = self.cfg, self.layout
        unit = attention_unit(cfg, self.base)
        dense = cfg.compensate == "dense"
        stream = capture_layer_inputs(self.model, batches, micro_batch=MICRO_BATCH)
        dense_stream = list(stream) if dense else None
        decoder_layers = self.model.get_submodule(lay.family.layers)
        out: list[LayerPlan] = []
        bar = tqdm(total=len(layers), desc="sequential", unit="layer", disable=not self.progress)
        for i in range(layers[-1] + 1):
            if self.loader is not None:
                self.loader.load(i)
            layer = decoder_layers[i]
            if i not in layers:  # before the range: both streams go through the same dense layer
                stream = _stream(layer, stream)
                dense_stream = stream if dense else None
                self.finish(i)
                continue
            targets = {}
            if dense:  # the unpruned layer's own outputs, before it changes
                paths = [lay.family.proj_path(r) for r in ("o", "down")]
                with record_outputs(layer, paths) as got:
                    dense_stream = _stream(layer, dense_stream)
                targets = got
            c = counts.get(i, Counts(0, 0))
            heads, kv = self._attention(layer, stream, c.attn, unit, targets.get(lay.family.proj_path("o")))
            self._mask(i, {"attn_head": heads, "kv_group": kv})  # the layer now computes what the pruned one will
            mlp = self._mlp(layer, stream, c.mlp, targets.get(lay.family.proj_path("down")))
            self._mask(i, {"mlp_channel": mlp})
            lp = LayerPlan(layer=i, heads=tuple(heads), kv_heads=tuple(kv), mlp_channels=tuple(mlp))
            if heads or mlp:
                out.append(lp)
            stream = _stream(layer, stream) if i < layers[-1] else []
            self.finish(i, lp)
            bar.update(1)
        bar.close()
        return out

    def finish(self, i: int, lp: LayerPlan | None = None) -> None:
        """With a sink: give layer i its refit biases, remove its units, write it out and free it."""
        if self.sink is None:
            return
        from llmprune.surgery.apply import prune_layer_

        if self.cfg.bias:
            add_biases_(self.model, self.layout, [r for r in WRITERS if not self.layout.has_bias(r)], [i])
        if lp is not None:
            prune_layer_(self.model, self.layout, PrunePlan(self.base, (lp,)), i)
        self.sink.write(f"{self.layout.layer(i)}.", self.model.get_submodule(self.layout.layer(i)))
        self.loader.release(i)

    def _row_scale(self, layer: nn.Module, role: str, w: torch.Tensor) -> torch.Tensor:
        """sqrt of the output Fisher of this Linear (a column of ones without one): the OBS updates are per
        row, so scaling the rows changes which units go, not how the kept ones are refit."""
        name = self._names.get(id(layer.get_submodule(self.layout.family.proj_path(role))))
        f = self.fisher.get(name) if self.fisher is not None and name is not None else None
        if f is None:
            return torch.ones(w.shape[0], 1, dtype=w.dtype, device=w.device)
        f = f.to(w.device, w.dtype)
        return (f + 1e-6 * f.mean().clamp_min(1e-30)).sqrt()[:, None]

    def _mask(self, i: int, units: dict[str, list[int]]) -> None:
        """Zero every member of the removed units (q/k/v rows, norm entries over them: what surgery removes)."""
        groups = build_groups(self.model, layers=range(i, i + 1), kinds=set(units), layout=self.layout)
        zero_slices_(self.model, unit_slices((g, units[g.kind]) for g in groups if units[g.kind]))

    def _attention(self, layer, stream, steps: int, unit: str, targets) -> tuple[list[int], list[int]]:
        if steps == 0:
            return [], []
        hd, shape = self.base.head_dim, self.base.layer_shape
        chosen: dict[str, list[int]] = {}

        def select(w: torch.Tensor, cinv: torch.Tensor, _width: int) -> list[int]:
            chosen["heads"], chosen["kv"] = _select_heads(w, cinv, hd, shape.heads, shape.kv_heads, steps, unit)
            return [c for h in chosen["heads"] for c in range(h * hd, (h + 1) * hd)]

        self._remove_inputs(layer, stream, "o", targets, select)
        return chosen["heads"], chosen["kv"]

    def _mlp(self, layer, stream, n: int, targets) -> list[int]:
        if n == 0:
            return []
        return self._remove_inputs(
            layer, stream, "down", targets, lambda w, cinv, width: _select_channels(w, cinv, n, width)
        )

    def _remove_inputs(self, layer, stream, role: str, targets, select) -> list[int]:
        """Remove the input columns `select(w, cinv, width)` picks from the `role` projection (o or down) and
        refit the rest: by the OBS updates of the selection (towards the layer's own outputs) or, with
        `targets`, by least squares towards them. Returns the removed columns."""
        bias = self.cfg.bias
        lin = layer.get_submodule(self.layout.family.proj_path(role))
        stat = _moments(layer, self.layout.family.proj_path(role), stream, targets)
        gram = _gram(stat, bias)
        lam = obs.ridge(stat.xtx, self.cfg.damp)  # from the inputs alone, not the constant column
        w, cinv = augmented_weight(lin, bias).to(gram.device), obs.damped_inverse(gram, lam)
        scale = self._row_scale(layer, role, w)
        w.mul_(scale)  # selection weighs each output by the loss's sensitivity to it (fisher); the refit is per row
        gone = select(w, cinv, lin.in_features)
        w.div_(scale)
        if targets is not None:
            keep = torch.ones(gram.shape[0], dtype=torch.bool)
            keep[gone] = False
            w = obs.refit(gram, augmented_weight(lin, bias), keep, lam, _refit_target(stat, lin, bias, True))
        _write(lin, w, bias)
        return gone


def add_biases_(model: nn.Module, layout: Layout, roles: list[str], layers: list[int] | None = None) -> None:
    """Give the `roles` projections of every layer (or of `layers`) a bias where they have none (zeros)."""
    for i in range(layout.num_layers) if layers is None else layers:
        for role in roles:
            lin = model.get_submodule(layout.proj(i, role))
            if lin.bias is None:
                zeros = torch.zeros(lin.out_features, dtype=lin.weight.dtype, device=lin.weight.device)
                lin.bias = nn.Parameter(zeros, requires_grad=lin.weight.requires_grad)


def sequential_prune_(
    model: nn.Module,
    batches: torch.Tensor,
    counts: dict[int, Counts],
    cfg: PruneConfig,
    *,
    progress: bool = True,
    loader: LayerLoader | None = None,
    fisher: dict[str, torch.Tensor] | None = None,
    sink: LayerSink | None = None,
) -> PrunePlan:
    """Run the sequential pass on `model` in place (removed units zeroed, readers refit) and return the plan
    of what it removed (surgery then removes it physically). With a `loader` (offload) the layers are read
    as the pass reaches them, and the ones after the range at the end. With a `sink` too, every layer is
    pruned physically as soon as it is done, written to the sink and freed: the model's layers end on the
    meta device with their pruned shapes (`llmprune.surgery.stream.save_streamed` writes the folder)."""
    layout = describe(model)
    base = BaseShape.from_layout(layout)
    layers = sorted(counts) or [0]
    was = model.training
    model.eval()
    t0 = time.perf_counter()
    try:
        with torch.no_grad():
            span = list(range(layers[0], layers[-1] + 1))
            seq = SequentialPass(model, layout, base, cfg, progress, loader, fisher, sink)
            plans = seq.run(batches, counts, span)
            for i in range(span[-1] + 1, layout.num_layers) if loader is not None else ():
                loader.load(i)  # after the range: read (and, with a sink, written out and freed) one by one
                seq.finish(i)
            if (
                cfg.bias and sink is None
            ):  # every layer gets the writers' bias (zero where not refit): one shape for all layers
                add_biases_(model, layout, [r for r in WRITERS if not layout.has_bias(r)])
    finally:
        model.train(was)
    plan = PrunePlan(base=base, layers=tuple(plans), meta={"sequential_seconds": round(time.perf_counter() - t0, 2)})
    plan.validate()
    return plan
