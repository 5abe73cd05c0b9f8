"""Hand-checked slicing and masking of single modules, and the RMSNorm eps/scale identity."""

from __future__ import annotations

import math

import torch
from torch import nn

from llmprune.surgery.linear import head_rows, slice_embedding, slice_linear, slice_rmsnorm_, zero_linear_


def test_slice_linear_rows_cols_bias_dtype_grad():
    lin = nn.Linear(4, 3, bias=True, dtype=torch.float64)
    with torch.no_grad():
        lin.weight.copy_(torch.arange(12, dtype=torch.float64).view(3, 4))
        lin.bias.copy_(torch.tensor([10.0, 20.0, 30.0]))
    lin.bias.requires_grad_(False)
    new = slice_linear(lin, out_keep=[0, 2], in_keep=[1, 3])
    assert (new.in_features, new.out_features) == (2, 2)
    assert new.weight.tolist() == [[1.0, 3.0], [9.0, 11.0]]
    assert new.bias.tolist() == [10.0, 30.0]
    assert new.weight.dtype == torch.float64 and new.weight.requires_grad and not new.bias.requires_grad
    assert new.weight.data_ptr() != lin.weight.data_ptr()  # a copy, not a view of the old storage
    x = torch.randn(5, 4, dtype=torch.float64)
    x[:, [0, 2]] = 0
    torch.testing.assert_close(new(x[:, [1, 3]]), lin(x)[:, [0, 2]])


def test_slice_linear_without_bias_and_keep_all():
    lin = nn.Linear(3, 2, bias=False)
    new = slice_linear(lin, in_keep=[2])
    assert new.bias is None and new.weight.shape == (2, 1)
    assert torch.equal(new.weight[:, 0], lin.weight[:, 2])


def test_slice_embedding_keeps_padding_idx():
    emb = nn.Embedding(5, 4, padding_idx=1)
    new = slice_embedding(emb, [0, 3])
    assert new.padding_idx == 1 and new.weight.shape == (5, 2)
    assert torch.equal(new.weight, emb.weight[:, [0, 3]])


def test_zero_linear_rows_and_cols():
    lin = nn.Linear(3, 3, bias=True)
    with torch.no_grad():
        lin.weight.fill_(1.0)
        lin.bias.fill_(2.0)
    zero_linear_(lin, rows=[1], cols=[2])
    assert lin.weight.tolist() == [[1, 1, 0], [0, 0, 0], [1, 1, 0]]
    assert lin.bias.tolist() == [2, 0, 2]


def test_head_rows():
    assert head_rows([0, 2], 3) == [0, 1, 2, 6, 7, 8]


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

    plain = LlamaRMSNorm(d, eps=0.5)
    plain.load_state_dict(norm.state_dict())
    slice_rmsnorm_(plain, keep)  # LLM-Pruner style: slice only
    assert (plain(x[:, keep]) - ref).abs().max() > 1e-2

    exact = LlamaRMSNorm(d, eps=0.5)
    exact.load_state_dict(norm.state_dict())
    ratio = d / len(keep)
    slice_rmsnorm_(exact, keep, scale=math.sqrt(ratio), eps=0.5 * ratio)
    assert exact.variance_epsilon == 1.0
    torch.testing.assert_close(exact(x[:, keep]), ref, atol=1e-6, rtol=1e-6)
