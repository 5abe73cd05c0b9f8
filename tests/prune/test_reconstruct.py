"""Least-squares reconstruction: exact on a hand-made case, and it lowers the output error."""

from __future__ import annotations

import torch

from llmprune.arch import describe
from llmprune.prune.plan import BaseShape, LayerPlan, PrunePlan
from llmprune.prune.reconstruct import collect_grams, reader_modules, reconstruct_, refit_columns


def test_refit_recovers_a_redundant_input_exactly():
    # input 2 is a copy of input 0: dropping it and doubling column 0 reproduces the output exactly
    g = torch.Generator().manual_seed(0)
    x = torch.randn(50, 3, generator=g)
    x[:, 2] = x[:, 0]
    w = torch.randn(4, 3, generator=g)
    keep = torch.tensor([True, True, False])
    new = refit_columns(w, x.T @ x, keep, damp=0.0)
    assert torch.all(new[:, 2] == 0)
    torch.testing.assert_close(x @ new.T, x @ w.T, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(new[:, 0], w[:, 0] + w[:, 2], rtol=1e-5, atol=1e-5)


def test_reconstruction_beats_plain_dropping(make_tiny):
    model = make_tiny("llama", heads=4, kv_heads=2)
    base = BaseShape.from_config(model.config)
    plan = PrunePlan(base=base, layers=(LayerPlan(layer=1, heads=(0, 2), mlp_channels=tuple(range(0, 48, 3))),))
    assert set(reader_modules(plan, describe(model))) == {
        "model.layers.1.mlp.down_proj",
        "model.layers.1.self_attn.o_proj",
    }
    batches = torch.randint(0, 128, (16, 12), generator=torch.Generator().manual_seed(1))
    name = "model.layers.1.mlp.down_proj"
    gram = collect_grams(model, batches, [name], progress=False)[name]
    w = model.get_submodule(name).weight.detach().clone()
    keep = torch.ones(48, dtype=torch.bool)
    keep[list(plan.layer(1).mlp_channels)] = False
    dropped = w * keep

    def err(v):  # output error on the calibration inputs: tr((W-V) C (W-V)^T)
        d = (w - v).double()
        return torch.trace(d @ gram.double() @ d.T).item()

    reconstruct_(model, plan, batches, damp=0.0, progress=False)
    refit = model.get_submodule(name).weight.detach()
    assert torch.all(refit[:, ~keep] == 0)
    assert err(refit) < 0.8 * err(dropped)
    # optimality (normal equations): the residual is orthogonal to every kept input
    resid = ((w - refit).double() @ gram.double())[:, keep]
    assert resid.abs().max().item() < 1e-6 * gram.abs().max().item()
    # o_proj: the removed heads' columns are zero too
    o = model.get_submodule("model.layers.1.self_attn.o_proj").weight
    assert torch.all(o[:, 0:8] == 0) and torch.all(o[:, 16:24] == 0)


def test_kept_column_grams_give_the_same_refit(make_tiny):
    model = make_tiny("llama", heads=4, kv_heads=2)
    batches = torch.randint(0, 128, (8, 12), generator=torch.Generator().manual_seed(2))
    name = "model.layers.2.mlp.down_proj"
    keep = torch.rand(48, generator=torch.Generator().manual_seed(3)) < 0.6
    full = collect_grams(model, batches, [name], progress=False)[name]
    part = collect_grams(model, batches, [name], keep={name: keep}, progress=False)[name]
    assert part.shape == (48, int(keep.sum()))
    torch.testing.assert_close(part, full[:, keep], rtol=1e-5, atol=1e-4)
    w = model.get_submodule(name).weight.detach()
    torch.testing.assert_close(refit_columns(w, part, keep, 0.01), refit_columns(w, full, keep, 0.01))
