"""Calibration passes: gradients, per-sample Fisher, activation norms, against direct computation."""

from __future__ import annotations

import contextlib

import pytest
import torch
from torch import nn

from llmprune.importance.collect import collect_gradients, collect_input_norms, lm_loss


def test_gradients_and_fisher_match_an_explicit_per_sample_loop(make_tiny):
    model = make_tiny("llama", heads=4, kv_heads=2)
    batches = torch.randint(0, 128, (3, 9), generator=torch.Generator().manual_seed(0))
    names = ["model.layers.1.mlp.down_proj.weight", "model.layers.0.self_attn.q_proj.weight"]
    params = {n: dict(model.named_parameters())[n] for n in names}
    grads, fishers = collect_gradients(model, batches, params, fisher=True, progress=False)
    # by hand
    per_sample = []
    for s in range(3):
        model.zero_grad()
        lm_loss(model, batches[s : s + 1]).backward()
        per_sample.append({n: params[n].grad.clone() for n in names})
    model.zero_grad()
    for n in names:
        g_mean = sum(ps[n] for ps in per_sample) / 3
        fisher = sum((ps[n] * params[n].detach()) ** 2 for ps in per_sample) / 3
        torch.testing.assert_close(grads[n], g_mean, rtol=1e-4, atol=1e-7)
        torch.testing.assert_close(fishers[n], fisher, rtol=1e-4, atol=1e-10)
    # nothing left behind: no grads, requires_grad restored
    assert all(p.grad is None and p.requires_grad for p in model.parameters())


def test_gradients_without_fisher_use_micro_batches(make_tiny):
    model = make_tiny("llama")
    batches = torch.randint(0, 128, (4, 7), generator=torch.Generator().manual_seed(1))
    name = "model.layers.2.mlp.up_proj.weight"
    p = dict(model.named_parameters())[name]
    grads, fishers = collect_gradients(model, batches, {name: p}, micro_batch=3, progress=False)
    model.zero_grad()
    lm_loss(model, batches).backward()
    torch.testing.assert_close(grads[name], p.grad, rtol=1e-4, atol=1e-7)
    assert fishers == {}


class _EmbedLinear(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.emb = nn.Embedding(10, 4)
        self.proj = nn.Linear(4, 3)

    def forward(self, input_ids, use_cache=False):
        return self.proj(self.emb(input_ids))


def test_input_norms_are_l2_over_all_tokens():
    m = _EmbedLinear()
    batches = torch.tensor([[1, 2, 3], [3, 3, 9]])
    norms = collect_input_norms(m, batches, ["proj"], micro_batch=1, progress=False)
    x = m.emb.weight[batches.flatten()].detach()
    torch.testing.assert_close(norms["proj"], x.pow(2).sum(0).sqrt())


@pytest.mark.parametrize(("method", "aggregate_by"), [("element1", "sum"), ("element2", "max"), ("vector", "sum")])
def test_lean_scores_equal_scores_from_whole_gradients(make_tiny, method, aggregate_by):
    """Reducing each gradient as soon as it is final gives the scores of keeping every gradient whole."""
    from llmprune.graph import build_groups
    from llmprune.graph.nodes import WHOLE
    from llmprune.importance import taylor
    from llmprune.importance.aggregate import aggregate
    from llmprune.importance.methods import ParamStats, importance_method
    from llmprune.importance.score import grad_micro_batch, score_groups

    model = make_tiny("llama", heads=4, kv_heads=2, tie_word_embeddings=True)
    groups = build_groups(model)
    batches = torch.randint(0, 128, (7, 4), generator=torch.Generator().manual_seed(2))
    lean = score_groups(model, groups, batches, method=method, aggregate_by=aggregate_by, progress=False)
    spec, params = importance_method(method), dict(model.named_parameters())
    names = sorted({m.name for g in groups for m in g.members})
    micro = grad_micro_batch(model, batches, [params[n] for n in names])
    assert 1 < micro < batches.shape[0]  # several passes: gradients accumulate in between
    grads, fishers = collect_gradients(
        model,
        batches,
        {n: params[n] for n in names},
        fisher=method == "element2",
        micro_batch=micro,
    )
    for g in groups:
        per_member = []
        for m in g.members:
            elem = spec.element(params[m.name].detach(), ParamStats(grad=grads[m.name], fisher=fishers.get(m.name)))
            units = g.units if m.dim != WHOLE else 1
            per_member.append(
                taylor.unit_scores(
                    elem, dim=m.dim, units=units, unit_size=m.unit_size, offset=m.offset, absolute_after_sum=spec.signed
                )
            )
        torch.testing.assert_close(lean[g.id], aggregate(per_member, aggregate_by), rtol=1e-5, atol=0)
    assert all(p.grad is None for p in model.parameters())


def test_the_last_backward_frees_each_gradient_as_it_completes(make_tiny):
    """While the last backward pass runs, gradients already reduced are gone (the memory the lean pass saves)."""
    from llmprune.importance.collect import reduce_gradients

    model = make_tiny("llama", num_hidden_layers=3)
    params = {n: p for n, p in model.named_parameters() if n.endswith("proj.weight")}
    alive: list[int] = []

    def reduce(name, grad, fisher):
        alive.append(sum(p.grad is not None for p in params.values()))

    batches = torch.randint(0, 128, (4, 7), generator=torch.Generator().manual_seed(3))
    reduce_gradients(model, batches, params, reduce, micro_batch=4, progress=False)
    assert len(alive) == len(params)
    assert max(alive) == 1 and min(alive) == 1  # only the gradient being reduced exists at that moment


@pytest.mark.parametrize("family", ["llama", "qwen2", "gemma3_text"])
def test_checkpointed_layers_give_the_same_gradients_and_keep_only_layer_inputs(make_tiny, family):
    """Checkpointed decoder layers (the default) give bit-identical gradients and Fisher diagonals; during the
    forward pass autograd keeps only the layers' inputs (plus embedding, final norm and logits), not each
    layer's inner activations; every layer gets its forward back."""
    from llmprune.importance.collect import checkpoint_layers

    model = make_tiny(family)
    params = {n: p for n, p in model.named_parameters() if n.endswith("proj.weight")}
    batches = torch.randint(0, 128, (3, 9), generator=torch.Generator().manual_seed(4))
    for fisher in (False, True):
        on = collect_gradients(model, batches, params, fisher=fisher, micro_batch=3, progress=False)
        off = collect_gradients(model, batches, params, fisher=fisher, micro_batch=3, checkpoint=False, progress=False)
        for a, b in zip(on, off, strict=True):
            assert a.keys() == b.keys() and all(torch.equal(a[n], b[n]) for n in a)
    assert all("forward" not in m.__dict__ for m in model.modules())

    def saved_bytes(checkpoint: bool) -> int:
        total = 0

        def pack(t):
            nonlocal total
            total += t.numel() * t.element_size()
            return t

        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            with checkpoint_layers(model) if checkpoint else contextlib.nullcontext():
                lm_loss(model, batches)
        return total

    assert saved_bytes(True) < 0.5 * saved_bytes(False)
