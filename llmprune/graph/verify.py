"""Cross-check the LLM-aware groups against torch-pruning's traced coupling (see trace.py).

For every group, `verify_groups` checks the structure (each member exists, the units cover the sliced
dimension exactly) and then asks the trace what pruning the group's units forces:

- `mlp_channel`, `hidden`: one query rooted at the first member with every unit; each traced index is
  attributed to a unit through its root index. The traced slices must equal the members' slices, unit by
  unit: no member missing, none extra.
- `kv_group`: one query per KV head, rooted at the q_proj rows of all its query heads; the traced
  slices must equal the unit's q/k/v rows and o columns exactly (the trace confirms that query head h
  reads KV head h // group_size).
- `attn_head`: the same query; the q rows and o columns traced from head h's rows must be the head's
  members, and the trace adds the rows of KV head h // group_size in k_proj and v_proj (and in a norm over
  k's rows), which the group leaves out on purpose (torch-pruning couples q.k^T channel-wise; a KV head
  stays while any of its query heads stays).
- Norms over head_dim (one weight shared by every head) are traced with every head and owned by none:
  they are left out of both attention checks.
- `layer`: no trace (torch-pruning has no notion of removing a block); the members must be every
  parameter of the decoder layer, each once, whole.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass

import torch
from torch import nn

from llmprune.arch import Layout, describe
from llmprune.errors import LlmpruneError
from llmprune.graph.nodes import WHOLE, Group, Member
from llmprune.graph.trace import Coupled, Trace

Slices = dict[tuple[str, int], set[int]]


class CouplingMismatch(LlmpruneError):
    """The LLM-aware groups disagree with the traced coupling: the model does not follow its family."""


@dataclass(frozen=True)
class Verification:
    groups: int  # groups checked
    queries: int  # trace queries made
    seconds: float  # trace build + queries


def verify_groups(
    model: nn.Module,
    groups: Iterable[Group],
    *,
    trace: Trace | None = None,
    layout: Layout | None = None,
    max_units: int | None = None,
) -> Verification:
    """Raise CouplingMismatch unless every group agrees with the traced coupling (see module doc).

    `max_units` limits the per-unit queries of attn_head / kv_group groups to that many units, evenly
    spaced and including the first and the last (None: every unit).
    """
    t0 = time.perf_counter()
    lay = layout or (trace.layout if trace else describe(model))
    params = dict(model.named_parameters())
    checker = _Checker(lay, params, trace or Trace(model, layout=lay), max_units)
    n = 0
    for g in groups:
        checker.check(g)
        n += 1
    return Verification(groups=n, queries=checker.queries, seconds=round(time.perf_counter() - t0, 3))


def sample_units(units: int, limit: int | None) -> list[int]:
    """All units, or `limit` evenly spaced ones including the first and the last."""
    if limit is None or units <= limit:
        return list(range(units))
    if limit < 2:
        return [0]
    return sorted({round(k * (units - 1) / (limit - 1)) for k in range(limit)})


class _Checker:
    def __init__(self, lay: Layout, params: dict, trace: Trace, max_units: int | None) -> None:
        self.lay, self.params, self.trace, self.max_units = lay, params, trace, max_units
        self.queries = 0
        self._kv_cache: dict[tuple[int, int], Coupled] = {}

    def check(self, g: Group) -> None:
        self._structure(g)
        if g.kind == "layer":
            self._layer(g)
        elif g.kind in ("mlp_channel", "hidden"):
            self._all_units(g)
        elif g.kind == "kv_group":
            for u in sample_units(g.units, self.max_units):
                got = {key: {idx for idx, _ in pairs} for key, pairs in self._kv_query(g.layer, u).items()}
                self._compare(g, u, got, _expected(g.members, u))
        elif g.kind == "attn_head":
            self._attn_heads(g)
        else:
            raise CouplingMismatch(f"{g.id}: unknown group kind {g.kind!r}")

    def _kv_query(self, layer: int, kv: int) -> Coupled:
        """Trace rooted at the q_proj rows of every query head of KV head `kv` (shared by both kinds).

        Norms over head_dim (Qwen3's q_norm / k_norm) apply one weight to every head: the trace couples
        their entries with every head's channels, but no head owns them, so they are left out."""
        if (layer, kv) not in self._kv_cache:
            self.queries += 1
            rows = self.lay.layers[layer].group_size * self.lay.head_dim
            q = f"{self.lay.proj(layer, 'q')}.weight"
            traced = self.trace.coupled(q, 0, range(kv * rows, (kv + 1) * rows))
            shared = {f"{self.lay.layer(layer)}.{n}.weight" for n in self.lay.family.head_norms}
            self._kv_cache[(layer, kv)] = {key: v for key, v in traced.items() if key[0] not in shared}
        return self._kv_cache[(layer, kv)]

    def _structure(self, g: Group) -> None:
        for m in g.members:
            if m.name not in self.params:
                raise CouplingMismatch(f"{g.id}: member {m.name} is not a parameter of the model")
            if m.dim == WHOLE:
                continue
            size = self.params[m.name].shape[m.dim]
            end = m.offset + g.units * m.unit_size
            fused = len(self.lay.family.fused_roles(_role(self.lay, m.module))) > 1
            if end > size or (end != size and not fused):
                raise CouplingMismatch(
                    f"{g.id}: {g.units} units of {m.unit_size} from {m.offset} do not cover {m.name} "
                    f"dim {m.dim} (size {size})"
                )

    def _layer(self, g: Group) -> None:
        prefix = self.lay.layer(g.layer) + "."
        expect = sorted(n for n in self.params if n.startswith(prefix))
        got = sorted(m.name for m in g.members)
        if got != expect or any(m.dim != WHOLE for m in g.members):
            raise CouplingMismatch(f"{g.id}: members {got} are not exactly the layer's parameters {expect}, whole")

    def _all_units(self, g: Group) -> None:
        """One query with every unit; traced indices are attributed to units through their root index."""
        root = g.members[0]
        self.queries += 1
        traced = self.trace.coupled(root.name, root.dim, range(root.offset, root.offset + g.units * root.unit_size))
        expect = {}
        for m in g.members:
            if m.dim != WHOLE:
                pos = torch.arange(g.units * m.unit_size)
                expect.setdefault((m.name, m.dim), []).append(_encode(pos // m.unit_size, m.offset + pos))
        got = {}
        for key, pairs in traced.items():
            if any(r is None for _, r in pairs):
                raise CouplingMismatch(f"{g.id}: the trace lost the root index of {key[0]} dim {key[1]}")
            t = torch.tensor(pairs, dtype=torch.long).view(-1, 2)
            got[key] = _encode((t[:, 1] - root.offset) // root.unit_size, t[:, 0])
        expect = {k: torch.cat(v).unique() for k, v in expect.items()}
        if expect.keys() != got.keys():
            self._compare(g, 0, {k: set() for k in got}, {k: set() for k in expect})
        for key, codes in expect.items():
            if not torch.equal(codes, got[key]):
                diff = set(codes.tolist()) ^ set(got[key].tolist())
                u = min(diff) >> 32
                self._compare(g, u, _decode(got, u), _expected(g.members, u))

    def _attn_heads(self, g: Group) -> None:
        """Head h: its q rows and o columns (attributed by root index) plus its KV head's k/v rows."""
        size = self.lay.layers[g.layer].group_size
        for h in sample_units(g.units, self.max_units):
            traced = self._kv_query(g.layer, h // size)
            root = range(h * self.lay.head_dim, (h + 1) * self.lay.head_dim)
            got: Slices = {}
            for key, pairs in traced.items():
                picked = {idx for idx, r in pairs if r is None or r in root}
                if picked:
                    got[key] = picked
            expect = _expected(g.members, h)
            kv_rows = self._kv_rows(g.layer, h // size)
            if any(expect.get(key, set()) & rows for key, rows in kv_rows.items()):
                raise CouplingMismatch(f"{g.id}: an attention head group must not hold k/v rows (its KV head stays)")
            for key, rows in kv_rows.items():  # a fused q/k/v Linear holds both
                expect[key] = expect.get(key, set()) | rows
            self._compare(g, h, got, expect)

    def _kv_rows(self, layer: int, kv: int) -> Slices:
        """KV head `kv`'s k and v rows (and biases, and entries of a norm over the k rows)."""
        hd = self.lay.head_dim
        out: Slices = {}
        for name in ("k", "v"):
            mod, first = self.lay.proj(layer, name), self.lay.rows(layer, name)[0]
            rows = range(first + kv * hd, first + (kv + 1) * hd)
            for param in ("weight", "bias") if self.lay.has_bias(name) else ("weight",):
                out.setdefault((f"{mod}.{param}", 0), set()).update(rows)
        for norm, role in self.lay.proj_norms(layer):
            if role == "k":
                out[(f"{norm}.weight", 0)] = set(range(kv * hd, (kv + 1) * hd))
        return out

    @staticmethod
    def _compare(g: Group, u: int, got: Slices, expect: Slices) -> None:
        if got == expect:
            return
        missing = sorted(f"{n} dim {d}" for (n, d) in expect.keys() - got.keys())
        extra = sorted(f"{n} dim {d}" for (n, d) in got.keys() - expect.keys())
        wrong = sorted(f"{n} dim {d}" for (n, d) in expect.keys() & got.keys() if expect[(n, d)] != got[(n, d)])
        raise CouplingMismatch(
            f"{g.id} unit {u} disagrees with the traced coupling: not traced {missing[:4]}, traced but not in "
            f"the group {extra[:4]}, different indices {wrong[:4]}. The model does not follow the "
            f"{g.kind} layout of its family; report it, or skip the check with --no-verify"
        )


def _role(lay: Layout, module: str) -> str:
    """A projection role held by Linear `module` ("" for anything else, e.g. a norm)."""
    path = module.split(".", len(lay.family.layers.split(".")) + 1)[-1]  # the path from the decoder layer
    return next((r for r in ("q", "k", "v", "o", "gate", "up", "down") if lay.family.proj_path(r) == path), "")


def _encode(unit: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    return (unit << 32 | idx).unique()


def _decode(codes: dict[tuple[str, int], torch.Tensor], unit: int) -> Slices:
    out: Slices = {}
    for key, c in codes.items():
        picked = {int(x) & 0xFFFFFFFF for x in c.tolist() if x >> 32 == unit}
        if picked:
            out[key] = picked
    return out


def _expected(members: Iterable[Member], unit: int) -> Slices:
    out: Slices = {}
    for m in members:
        if m.dim != WHOLE:
            out.setdefault((m.name, m.dim), set()).update(m.indices(unit))
    return out
