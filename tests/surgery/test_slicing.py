"""Hand-checked removal of parameter slices (shapes, values, dtype, grad flags, tying) and the norm identity."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from llmprune.errors import LlmpruneError
from llmprune.surgery.slicing import kept_indices, remove_slices_, rescale_norm_


class Toy(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.emb = nn.Embedding(5, 4, padding_idx=1)
        self.lin = nn.Linear(4, 3, bias=True, dtype=torch.float64)
        self.head = nn.Linear(4, 5, bias=False)
        self.head.weight = self.emb.weight  # tied


def test_rows_cols_bias_dtype_and_grad_flags():
    toy = Toy()
    with torch.no_grad():
        toy.lin.weight.copy_(torch.arange(12, dtype=torch.float64).view(3, 4))
        toy.lin.bias.copy_(torch.tensor([10.0, 20.0, 30.0]))
    toy.lin.bias.requires_grad_(False)
    old = toy.lin.weight.detach().clone()
    changed = remove_slices_(toy, {("lin.weight", 0): [1], ("lin.weight", 1): [0, 2], ("lin.bias", 0): [1]})
    assert changed == ["lin"]
    assert (toy.lin.in_features, toy.lin.out_features) == (2, 2)
    assert toy.lin.weight.tolist() == [[1.0, 3.0], [9.0, 11.0]] and toy.lin.bias.tolist() == [10.0, 30.0]
    assert toy.lin.weight.dtype == torch.float64 and toy.lin.weight.requires_grad and not toy.lin.bias.requires_grad
    x = torch.randn(5, 4, dtype=torch.float64)
    x[:, [0, 2]] = 0
    torch.testing.assert_close(toy.lin(x[:, [1, 3]]), (x @ old.T + torch.tensor([10.0, 20.0, 30.0]))[:, [0, 2]])


def test_tied_weights_stay_one_tensor():
    toy = Toy()
    before = toy.emb.weight.detach().clone()
    assert sorted(remove_slices_(toy, {("emb.weight", 1): [1, 2]})) == ["emb", "head"]
    assert toy.head.weight is toy.emb.weight
    assert toy.emb.embedding_dim == 2 and toy.head.in_features == 2 and toy.emb.padding_idx == 1
    assert torch.equal(toy.emb.weight, before[:, [0, 3]])


def test_nothing_left_is_an_error_and_empty_slices_change_nothing():
    toy = Toy()
    with pytest.raises(LlmpruneError, match="empty tensor"):
        remove_slices_(toy, {("lin.weight", 0): [0, 1, 2]})
    assert remove_slices_(toy, {("lin.weight", 0): []}) == []
    assert kept_indices([3, 0], 5) == [1, 2, 4]


def test_rmsnorm_eps_rescale_is_exact_and_plain_slicing_is_not():
    from transformers.models.llama.modeling_llama import LlamaRMSNorm

    torch.manual_seed(0)
    d, keep = 8, [0, 2, 3, 7]
    norm = LlamaRMSNorm(d, eps=0.5)  # a large eps makes the difference plain to see
    with torch.no_grad():
        norm.weight.uniform_(0.5, 1.5)
    x = torch.randn(3, d, dtype=torch.float64).float()
    x_zeroed = x.clone()
    x_zeroed[:, [1, 4, 5, 6]] = 0
    ref = norm(x_zeroed)[:, keep]
    gone = [1, 4, 5, 6]

    plain = LlamaRMSNorm(d, eps=0.5)
    plain.load_state_dict(norm.state_dict())
    remove_slices_(plain, {("weight", 0): gone})  # LLM-Pruner style: slice only
    assert (plain(x[:, keep]) - ref).abs().max() > 1e-2

    exact = LlamaRMSNorm(d, eps=0.5)
    exact.load_state_dict(norm.state_dict())
    remove_slices_(exact, {("weight", 0): gone})
    rescale_norm_(exact, d / len(keep), "variance_epsilon")
    assert exact.variance_epsilon == 1.0
    torch.testing.assert_close(exact(x[:, keep]), ref, atol=1e-6, rtol=1e-6)


def test_each_replaced_tensor_is_freed_before_the_next_is_sliced(monkeypatch):
    """Surgery never holds the full-size and the pruned copy of the whole model at once (a pruned 7B model
    would need 13.5 + 10.8 GB): when a tensor is sliced, the ones replaced before it are gone."""
    import weakref

    from llmprune.surgery import slicing

    model = nn.Sequential(*[nn.Linear(8, 8) for _ in range(4)])
    alive = {n: weakref.ref(p) for n, p in model.named_parameters()}
    seen: list[int] = []
    drop = slicing._drop

    def counting(t, dim, removed):
        seen.append(sum(ref() is not None for ref in alive.values()))
        return drop(t, dim, removed)

    monkeypatch.setattr(slicing, "_drop", counting)
    remove_slices_(model, {(f"{i}.weight", 0): [0] for i in range(4)})
    assert seen == [8, 7, 6, 5]  # 4 weights and 4 biases; one weight fewer each time
