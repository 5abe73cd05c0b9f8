"""Hand-computed importance values and aggregation."""

from __future__ import annotations

import pytest
import torch

from llmprune.errors import LlmpruneError
from llmprune.importance import taylor
from llmprune.importance.aggregate import aggregate

W = torch.tensor([[1.0, -2.0, 3.0, -4.0], [0.5, 0.0, -1.0, 2.0]])
G = torch.tensor([[0.1, 0.2, -0.3, 0.4], [-1.0, 3.0, 0.5, 0.25]])


def test_element1_is_abs_g_times_w():
    expected = torch.tensor([[0.1, 0.4, 0.9, 1.6], [0.5, 0.0, 0.5, 0.5]])
    torch.testing.assert_close(taylor.element1(W, G), expected)


def test_element2_subtracts_half_fisher():
    fisher = torch.full_like(W, 0.2)
    gw = G * W
    torch.testing.assert_close(taylor.element2(W, G, fisher), (gw - 0.1).abs())
    assert taylor.element2(W, G, fisher)[0, 0].item() == pytest.approx(0.0)  # 0.1 - 0.1


def test_vector_is_abs_of_the_structure_sum():
    # rows are the structures (dim 0): row 0 g*w = [0.1, -0.4, -0.9, -1.6] -> |sum| = 2.8
    s = taylor.unit_scores(taylor.vector(W, G), dim=0, units=2, unit_size=1, absolute_after_sum=True)
    torch.testing.assert_close(s, torch.tensor([2.8, 0.5]))  # row 1: |-0.5 + 0 - 0.5 + 0.5|
    e1 = taylor.unit_scores(taylor.element1(W, G), dim=0, units=2, unit_size=1)
    torch.testing.assert_close(e1, torch.tensor([3.0, 1.5]))


def test_unit_scores_columns_unit_size_offset_and_whole():
    m = taylor.magnitude(W)
    # columns, units of 2 columns: [1+2+0.5+0, 3+4+1+2]
    torch.testing.assert_close(taylor.unit_scores(m, dim=1, units=2, unit_size=2), torch.tensor([3.5, 10.0]))
    # one unit of one column starting at offset 2
    torch.testing.assert_close(taylor.unit_scores(m, dim=1, units=1, unit_size=1, offset=2), torch.tensor([4.0]))
    torch.testing.assert_close(taylor.unit_scores(m, dim=-1, units=1, unit_size=1), torch.tensor([13.5]))
    torch.testing.assert_close(taylor.magnitude(W, 2)[0], torch.tensor([1.0, 4.0, 9.0, 16.0]))


def test_activation_is_wanda_score():
    norms = torch.tensor([1.0, 2.0, 0.5, 0.0])
    expected = torch.tensor([[1.0, 4.0, 1.5, 0.0], [0.5, 0.0, 0.5, 0.0]])
    torch.testing.assert_close(taylor.activation(W, norms), expected)


def test_aggregations():
    members = [torch.tensor([1.0, 4.0]), torch.tensor([2.0, 0.5]), torch.tensor([3.0, 1.0])]
    assert aggregate(members, "sum").tolist() == [6.0, 5.5]
    assert aggregate(members, "mean").tolist() == pytest.approx([2.0, 5.5 / 3])
    assert aggregate(members, "max").tolist() == [3.0, 4.0]
    assert aggregate(members, "prod").tolist() == pytest.approx([6.0, 2.0])
    assert aggregate(members, "last").tolist() == [3.0, 1.0]
    tiny = [torch.full((2,), 1e-30)] * 4  # fp32 would underflow to 0 and tie everything
    assert aggregate(tiny, "prod")[0].item() == pytest.approx(1e-120, rel=1e-6)
    with pytest.raises(LlmpruneError, match="unknown aggregation 'median'"):
        aggregate(members, "median")
