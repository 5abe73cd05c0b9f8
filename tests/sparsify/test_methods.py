"""The three methods on tiny random models: exact sparsity, N:M groups, untouched weights, torch.prune interop,
and Wanda's sequential calibration."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn
from torch.nn.utils import prune

from llmprune.errors import LlmpruneError
from llmprune.sparsify import SparsifyConfig, global_magnitude_, magnitude_, sparsify_, wanda_
from llmprune.sparsify.targets import target_linears
from llmprune.sparsify.wanda import RowNorms, wanda_scores


def _batches(n=6, seq=16, seed=0):
    return torch.randint(0, 128, (n, seq), generator=torch.Generator().manual_seed(seed))


def _untargeted(model):
    targets = {f"{n}.weight" for n in target_linears(model)}
    return {k: v.clone() for k, v in model.state_dict().items() if k not in targets}


@pytest.mark.parametrize("family", ["llama", "qwen2"])
def test_wanda_exact_sparsity_per_row(make_tiny, family):
    model = make_tiny(family)
    wanda_(model, _batches(), 0.5, progress=False)
    for name, lin in target_linears(model).items():
        zeros = (lin.weight == 0).sum(dim=1)
        assert (zeros == lin.in_features // 2).all(), name


def test_magnitude_exact_sparsity_per_layer(make_tiny):
    model = make_tiny("llama")
    before = {n: lin.weight.detach().abs().clone() for n, lin in target_linears(model).items()}
    magnitude_(model, 0.3, progress=False)
    for name, lin in target_linears(model).items():
        mask = lin.weight == 0
        assert int(mask.sum()) == int(lin.weight.numel() * 0.3), name
        assert before[name][mask].max() <= before[name][~mask].min(), name  # the lowest |W| went


@pytest.mark.parametrize("method", ["magnitude", "wanda"])
@pytest.mark.parametrize(("pattern", "m"), [("2:4", 4), ("4:8", 8)])
def test_nm_pattern_every_group_half_zero(make_tiny, method, pattern, m):
    model = make_tiny("llama")
    report = sparsify_(
        model, SparsifyConfig(method=method, sparsity=None, pattern=pattern), batches=_batches(), progress=False
    )
    for name, lin in target_linears(model).items():
        groups = (lin.weight == 0).reshape(lin.out_features, -1, m)
        assert (groups.sum(dim=2) >= m // 2).all(), name
    assert report["achieved"]["overall"] == pytest.approx(0.5)


@pytest.mark.parametrize("method", ["magnitude", "wanda", "global-magnitude"])
def test_embeddings_norms_and_lm_head_untouched(make_tiny, method):
    model = make_tiny("qwen2")
    before = _untargeted(model)
    sparsify_(model, SparsifyConfig(method=method, sparsity=0.5), batches=_batches(), progress=False)
    after = _untargeted(model)
    assert before.keys() == after.keys()
    for k in before:
        assert torch.equal(before[k], after[k]), k
    assert not (model.lm_head.weight == 0).any() and not (model.model.embed_tokens.weight == 0).any()


def test_global_magnitude_matches_torch_prune_and_is_permanent(make_tiny):
    model = make_tiny("llama")
    ref = copy.deepcopy(model)
    all_w = torch.cat([lin.weight.detach().abs().flatten() for lin in target_linears(model).values()])
    k = round(0.4 * all_w.numel())
    threshold = all_w.sort().values[k - 1]
    global_magnitude_(model, 0.4)
    # the PyTorch API by hand on a copy gives the same weights
    params = [(lin, "weight") for lin in target_linears(ref).values()]
    prune.global_unstructured(params, pruning_method=prune.L1Unstructured, amount=0.4)
    for name, lin in target_linears(model).items():
        ref_lin = ref.get_submodule(name)
        assert torch.equal(lin.weight, ref_lin.weight), name
        # zeros are exactly the globally lowest |W|, so per-layer sparsities differ
        assert ((lin.weight == 0) == (ref_lin.weight_orig.abs() <= threshold)).all(), name
        assert type(lin) is nn.Linear and isinstance(lin.weight, nn.Parameter)
        assert not hasattr(lin, "weight_orig") and not hasattr(lin, "weight_mask")
        assert not lin._forward_pre_hooks and not prune.is_pruned(lin)
    total = sum(int((lin.weight == 0).sum()) for lin in target_linears(model).values())
    assert total == k
    sparsities = {round(float((lin.weight == 0).float().mean()), 3) for lin in target_linears(model).values()}
    assert len(sparsities) > 1
    assert all(n.endswith("weight") or n.endswith("bias") for n, _ in model.named_parameters())


def test_wanda_statistics_come_from_the_pruned_previous_layers(make_tiny):
    """Layer i's input norms are those of a forward pass through the already-pruned layers 0..i-1."""
    model = make_tiny("llama")
    dense = copy.deepcopy(model)
    batches = _batches()
    used = wanda_(model, batches, 0.5, progress=False)

    def q_input_norms(m):
        stats = {i: RowNorms(m.config.hidden_size) for i in range(len(m.model.layers))}
        handles = [
            layer.self_attn.q_proj.register_forward_pre_hook(lambda _m, a, s=stats[i]: s.add(a[0]))
            for i, layer in enumerate(m.model.layers)
        ]
        with torch.no_grad():
            m(input_ids=batches, use_cache=False)
        for h in handles:
            h.remove()
        return {i: s.scaler_row for i, s in stats.items()}

    pruned_stats, dense_stats = q_input_norms(model), q_input_norms(dense)
    for i in range(len(model.model.layers)):
        got = used[f"model.layers.{i}.self_attn.q_proj"]
        assert torch.allclose(got, pruned_stats[i], rtol=1e-4, atol=1e-6), i
        if i > 0:  # after a pruned layer the statistics are not the dense model's
            assert not torch.allclose(got, dense_stats[i], rtol=1e-3), i
    assert torch.allclose(used["model.layers.0.self_attn.q_proj"], dense_stats[0], rtol=1e-4, atol=1e-6)


def test_wanda_one_shot_uses_the_dense_model_statistics(make_tiny):
    """--one-shot: every layer's norms come from one forward pass of the dense model, and each row loses
    exactly the weights with the lowest |W| * ||X|| under those norms."""
    model = make_tiny("qwen2")
    dense = copy.deepcopy(model)
    batches = _batches()
    used = wanda_(model, batches, 0.5, sequential=False, progress=False)
    stats, handles = {}, []
    for name, lin in target_linears(dense).items():
        stats[name] = RowNorms(lin.in_features)
        handles.append(lin.register_forward_pre_hook(lambda _m, a, s=stats[name]: s.add(a[0])))
    with torch.no_grad():
        dense(input_ids=batches, use_cache=False)
    for h in handles:
        h.remove()
    assert set(used) == set(stats)
    for name, lin in target_linears(model).items():
        assert torch.allclose(used[name], stats[name].scaler_row, rtol=1e-4, atol=1e-6), name
        w = dense.get_submodule(name).weight
        k = int(w.shape[1] * 0.5)
        expect = torch.zeros_like(w, dtype=torch.bool).scatter_(
            1, torch.sort(wanda_scores(w, used[name]), dim=1, stable=True).indices[:, :k], True
        )
        assert torch.equal(lin.weight == 0, expect), name
    seq = copy.deepcopy(dense)
    wanda_(seq, batches, 0.5, progress=False)  # the sequential mode picks differently after layer 0
    pairs = zip(target_linears(seq).values(), target_linears(model).values(), strict=True)
    assert not all(torch.equal(a.weight, b.weight) for a, b in pairs)


def test_wanda_micro_batches_do_not_change_the_result(make_tiny):
    a, b = make_tiny("mistral"), make_tiny("mistral")
    batches = _batches(n=5)
    wanda_(a, batches, 0.5, micro_batch=5, progress=False)
    wanda_(b, batches, 0.5, micro_batch=2, progress=False)
    for (name, la), lb in zip(target_linears(a).items(), target_linears(b).values(), strict=True):
        assert torch.equal(la.weight == 0, lb.weight == 0), name


def test_pattern_not_dividing_width_names_the_layer(make_tiny):
    model = make_tiny("llama")  # hidden 32, intermediate 48
    before = copy.deepcopy(model.state_dict())
    with pytest.raises(LlmpruneError, match=r"model\.layers\.0\.self_attn\.q_proj: its 32 inputs"):
        sparsify_(model, SparsifyConfig(method="magnitude", sparsity=None, pattern="3:5"), progress=False)
    with pytest.raises(LlmpruneError, match=r"model\.layers\.0\.mlp\.down_proj: its 48 inputs"):
        sparsify_(
            model, SparsifyConfig(method="wanda", sparsity=None, pattern="16:32"), batches=_batches(), progress=False
        )
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k  # nothing was touched


def test_report_contents(make_tiny):
    model = make_tiny("llama")
    report = sparsify_(model, SparsifyConfig(method="magnitude", sparsity=0.25), progress=False)
    ach = report["achieved"]
    assert report["method"] == "magnitude" and report["config"]["target_sparsity"] == 0.25
    assert len(ach["layers"]) == 3 and len(ach["modules"]) == 21
    assert ach["overall"] == pytest.approx(ach["zeros"] / ach["numel"]) and 0.24 < ach["overall"] <= 0.25
    assert 0 < ach["overall_model"] < ach["overall"]  # embeddings and lm_head are dense
    assert report["seconds"] >= 0
