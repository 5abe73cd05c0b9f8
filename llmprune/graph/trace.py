"""Trace a model with torch-pruning's DependencyGraph (the only module that touches its internals).

`trace_model(model)` builds torch-pruning's graph of the model and `Trace.coupled(param, dim, indices)`
answers "pruning these indices of this parameter along dim forces which slices elsewhere?", in llmprune's
terms: {(parameter name, dim): [(index, root index or None), ...]}. `verify.py` compares that with the
LLM-aware groups of `build.py`.

What torch-pruning gives raw: channel-level coupling from the autograd graph, with the in/out-degree
rules (pruning a producer's outputs prunes its consumers' inputs; element-wise ops, norms and residual
adds pass indices through). Per decoder layer this finds the MLP group (gate rows = up rows = down
columns) and the residual stream (one group over embedding, norms, q/k/v/gate/up columns, o/down rows,
lm_head columns). Inside attention it couples query channel (h, d) with o_proj column (h, d) and, through
the GQA `expand`, with key/value channel (h // group_size, d): it treats q.k^T and attn.v as channel-wise.

What the LLM-aware layer (build.py) adds: attention units are whole heads (rotary embeddings mix
channel d with d + head_dim/2, and head_dim must stay uniform), a query head is not bound to its KV head
(removing some query heads of a KV group keeps the KV head, as long as every group keeps the same number),
KV heads take their query heads with them, whole layers are a unit, and a tied lm_head is one parameter.

How the trace is run, and why (checked on transformers 5.23 / torch-pruning 1.6.1):
- on a meta-device twin of the model (same modules and shapes, no weights): no weight is read, so it
  costs the same for a 135M or a 7B model (SmolLM2: ~1 s instead of ~8 s for the first real forward);
- eager attention: with SDPA the `repeat_kv` expand is hidden inside one op and torch-pruning maps query
  channels one-to-one onto key/value channels (wrong indices, beyond k_proj's width under GQA);
- `use_cache=False` and an output transform (`out.logits`): a KV cache in the outputs makes torch-pruning
  fail while flattening them ("'tuple' object has no attribute 'grad_fn'");
- a 2-D attention mask: without one, transformers checks position ids for packed sequences with a
  data-dependent `.all()`, which meta tensors cannot do;
- rotary embedding replaced by the identity during the trace: torch-pruning's index mapping of
  rotate_half's slice + cat shifts indices by head_dim/2 at every pass and never terminates on some
  shapes (llama, 8 heads / 4 KV heads, root q_proj row 0: rows 0, 32, 64, 96, ...). The rotation never
  crosses a head, and heads are the attention unit, so nothing is lost;
- torch-pruning recomputes every index mapping at each group query (25 ms on SmolLM2); the twin is never
  pruned, so `coupled` skips that after the first build (3 ms per query).
"""

from __future__ import annotations

import contextlib
import copy
import sys
import warnings
from collections.abc import Iterator, Sequence

import torch
from torch import nn

from llmprune.arch import Layout, describe
from llmprune.errors import LlmpruneError

Coupled = dict[tuple[str, int], list[tuple[int, int | None]]]


def _identity_rotary(q, k, cos, sin, *args, **kwargs):
    return q, k


def meta_twin(model: nn.Module) -> nn.Module:
    """A copy of `model` whose parameters and buffers live on the meta device (tying preserved)."""
    memo: dict[int, object] = {}
    for p in model.parameters():
        memo[id(p)] = nn.Parameter(torch.empty_like(p, device="meta"), requires_grad=True)
    for b in model.buffers():
        memo[id(b)] = torch.empty_like(b, device="meta")
    return copy.deepcopy(model, memo)


@contextlib.contextmanager
def _rotary_identity(twin: nn.Module, layout: Layout) -> Iterator[None]:
    fam = layout.family
    attn = twin.get_submodule(layout.attn(0))
    module = sys.modules[type(attn).__module__]
    original = getattr(module, fam.rotary_fn, None)
    if original is None:
        raise LlmpruneError(f"{module.__name__} has no {fam.rotary_fn}; this transformers version is not supported")
    setattr(module, fam.rotary_fn, _identity_rotary)
    try:
        yield
    finally:
        setattr(module, fam.rotary_fn, original)


@contextlib.contextmanager
def _frozen_index_mapping() -> Iterator[None]:
    from torch_pruning.dependency import index_mapping

    original = index_mapping.update_index_mapping
    index_mapping.update_index_mapping = lambda graph: None
    try:
        yield
    finally:
        index_mapping.update_index_mapping = original


class Trace:
    """torch-pruning's dependency graph of a model, queried in llmprune's terms (parameter name, dim)."""

    def __init__(self, model: nn.Module, *, layout: Layout | None = None, seq_len: int = 4) -> None:
        import torch_pruning as tp

        self.layout = layout or describe(model)
        twin = meta_twin(model)
        twin.set_attn_implementation("eager")
        twin.eval()
        self._twin = twin
        # a tied Parameter is reported under its first name (the embedding), as in the groups
        self._names = {id(p): n for n, p in twin.named_parameters()}
        owned = {id(p) for m in twin.modules() if isinstance(m, (nn.Linear, nn.Embedding)) for p in m.parameters()}
        unwrapped = [(p, 0) for p in twin.parameters() if id(p) not in owned and p.dim() == 1]
        inputs = {
            "input_ids": torch.zeros((1, seq_len), dtype=torch.long, device="meta"),
            "attention_mask": torch.ones((1, seq_len), dtype=torch.long, device="meta"),
            "use_cache": False,
        }
        with torch.enable_grad(), _rotary_identity(twin, self.layout), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                self._dg = tp.DependencyGraph().build_dependency(
                    twin,
                    example_inputs=inputs,
                    output_transform=lambda out: out.logits,
                    unwrapped_parameters=unwrapped,
                    verbose=False,
                )
            except (RuntimeError, TypeError, ValueError, AttributeError, NotImplementedError) as e:
                raise LlmpruneError(
                    f"tracing this {self.layout.family} model with torch-pruning failed ({type(e).__name__}: "
                    f"{str(e).splitlines()[0] if str(e) else ''}); skip the cross-check with --no-verify"
                ) from e

    def _root(self, param: str, dim: int):
        """(node key, pruning function) that prunes `param` along `dim`."""
        dg = self._dg
        mod_name, _, attr = param.rpartition(".")
        mod = self._twin.get_submodule(mod_name)
        if isinstance(mod, nn.Linear) and attr == "weight" and dim in (0, 1):
            pruner = dg.get_pruner_of_module(mod)
            return mod, pruner.prune_out_channels if dim == 0 else pruner.prune_in_channels
        if isinstance(mod, nn.Embedding) and attr == "weight" and dim == 1:
            return mod, dg.get_pruner_of_module(mod).prune_out_channels
        p = getattr(mod, attr)
        if isinstance(p, nn.Parameter) and p in dg.module2node and dim == 0:
            return p, dg.get_pruner_of_module(p).prune_out_channels
        raise LlmpruneError(f"cannot root a trace query at {param} dim {dim}")

    def coupled(self, param: str, dim: int, indices: Sequence[int]) -> Coupled:
        """Slices torch-pruning couples with `indices` of `param` along `dim` (the root included).

        Returns {(parameter name, dim): [(index, root index), ...]}; the root index is the root's index
        that led there, or None where torch-pruning's index mapping drops it (GQA key/value channels).
        """
        key, fn = self._root(param, dim)
        with _frozen_index_mapping():
            group = self._dg.get_pruning_group(key, fn, list(indices))
        out: Coupled = {}
        for item in group:
            for name_dim in self._keys(item.dep):
                out.setdefault(name_dim, []).extend(zip(item.idxs, item.root_idxs, strict=True))
        return out

    def _keys(self, dep) -> list[tuple[str, int]]:
        target = dep.target.module
        if isinstance(target, nn.Parameter):
            return [(self._names[id(target)], dep.target.pruning_dim)]
        if isinstance(target, nn.Embedding):
            return [(self._names[id(target.weight)], 1)]
        if isinstance(target, nn.Linear):
            if self._dg.is_out_channel_pruning_fn(dep.handler):
                keys = [(self._names[id(target.weight)], 0)]
                return keys + ([(self._names[id(target.bias)], 0)] if target.bias is not None else [])
            return [(self._names[id(target.weight)], 1)]
        if isinstance(target, nn.Module) and any(True for _ in target.parameters(recurse=False)):
            raise LlmpruneError(f"unexpected module {type(target).__name__} with parameters in the trace")
        return []  # torch-pruning's own operator nodes (reshape, add, ...)


def trace_model(model: nn.Module, *, layout: Layout | None = None) -> Trace:
    """Trace `model` once (a meta twin: no weights are read); reuse the Trace for many queries."""
    return Trace(model, layout=layout)
