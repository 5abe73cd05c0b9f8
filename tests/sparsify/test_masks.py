"""Mask functions and the Wanda score on small hand-checked tensors."""

from __future__ import annotations

import pytest
import torch

from llmprune.errors import LlmpruneError
from llmprune.sparsify.masks import layer_mask, lowest_k, nm_mask, row_mask, select_mask
from llmprune.sparsify.wanda import RowNorms, wanda_scores


def test_wanda_score_hand_computed_3x4():
    w = torch.tensor([[1.0, -3.0, 3.0, -4.0], [4.0, 3.0, -2.0, 0.5], [-0.1, 5.0, -1.0, 2.0]])
    x = torch.tensor([[[2.0, 1.0, 0.5, 0.0], [0.0, 0.0, 0.0, 1.0]]])  # one sample of 2 tokens
    stats = RowNorms(4)
    stats.add(x)
    assert torch.allclose(stats.scaler_row, torch.tensor([4.0, 1.0, 0.25, 1.0]))  # ||X_j||^2
    scores = wanda_scores(w, stats.scaler_row)
    expected = torch.tensor([[2.0, 3.0, 1.5, 4.0], [8.0, 3.0, 1.0, 0.5], [0.2, 5.0, 0.5, 2.0]])
    assert torch.allclose(scores, expected)
    mask = row_mask(scores, 0.5)
    pruned = w.masked_fill(mask, 0.0)
    assert torch.equal(pruned, torch.tensor([[0.0, -3.0, 0.0, -4.0], [4.0, 3.0, 0.0, 0.0], [0.0, 5.0, 0.0, 2.0]]))
    # magnitude alone would zero w[0, 1] instead of w[0, 2]: the activation norm changes the choice
    assert not torch.equal(row_mask(w.abs(), 0.5), mask)


def test_row_norms_is_a_running_mean_over_samples():
    x = torch.randn(6, 5, 3)
    whole, parts = RowNorms(3), RowNorms(3)
    whole.add(x)
    for chunk in x.split([1, 3, 2]):
        parts.add(chunk)
    assert torch.allclose(whole.scaler_row, x.pow(2).sum(dim=(0, 1)) / 6, rtol=1e-5)
    assert torch.allclose(parts.scaler_row, whole.scaler_row, rtol=1e-5)


@pytest.mark.parametrize("sparsity", [0.0, 0.25, 0.5, 0.7, 0.99])
def test_row_mask_exact_per_row(sparsity):
    scores = torch.randn(7, 40)
    mask = row_mask(scores, sparsity)
    k = int(40 * sparsity)
    assert (mask.sum(dim=1) == k).all()
    for r in range(7):  # the zeroed entries are the k lowest of the row
        if 0 < k < 40:
            assert scores[r][mask[r]].max() <= scores[r][~mask[r]].min()


@pytest.mark.parametrize("sparsity", [0.0, 0.3, 0.5, 0.9])
def test_layer_mask_exact_per_matrix(sparsity):
    scores = torch.randn(9, 13)
    mask = layer_mask(scores, sparsity)
    k = int(scores.numel() * sparsity)
    assert int(mask.sum()) == k
    if k:
        assert scores[mask].max() <= scores[~mask].min()
        assert mask.sum(dim=1).unique().numel() > 1  # not a per-row quota


def test_ties_still_give_exact_counts():
    scores = torch.zeros(3, 8)
    assert (row_mask(scores, 0.5).sum(dim=1) == 4).all()
    assert int(layer_mask(scores, 0.5).sum()) == 12
    assert (nm_mask(scores, 2, 4).reshape(3, 2, 4).sum(dim=2) == 2).all()


@pytest.mark.parametrize(("n", "m"), [(2, 4), (4, 8), (1, 4)])
def test_nm_mask_keeps_n_largest_of_every_m(n, m):
    scores = torch.randn(5, 4 * m)
    mask = nm_mask(scores, n, m)
    groups, gmask = scores.reshape(5, -1, m), mask.reshape(5, -1, m)
    assert (gmask.sum(dim=2) == m - n).all()
    kept_min = groups.masked_fill(gmask, float("inf")).min(dim=2).values
    dropped_max = groups.masked_fill(~gmask, float("-inf")).max(dim=2).values
    assert (dropped_max <= kept_min).all()


def test_nm_mask_rejects_width_not_divisible():
    with pytest.raises(LlmpruneError, match="divisible by 4"):
        nm_mask(torch.randn(2, 6), 2, 4)


def test_select_mask_dispatch():
    s = torch.randn(4, 8)
    assert torch.equal(select_mask(s, 0.5, (2, 4), per_row=True), nm_mask(s, 2, 4))
    assert torch.equal(select_mask(s, 0.5, None, per_row=True), row_mask(s, 0.5))
    assert torch.equal(select_mask(s, 0.5, None, per_row=False), layer_mask(s, 0.5))


def test_lowest_k_equals_a_stable_sort_with_many_ties():
    g = torch.Generator().manual_seed(0)
    scores = torch.randint(0, 4, (6, 30), generator=g).float()  # heavy ties
    for k in (0, 1, 7, 15, 29, 30):
        expected = torch.zeros_like(scores, dtype=torch.bool)
        expected.scatter_(1, torch.sort(scores, dim=1, stable=True).indices[:, :k], True)
        assert torch.equal(lowest_k(scores, k), expected), k
