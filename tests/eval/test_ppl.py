"""Perplexity: windows, hand-computed value, and bad input."""

from __future__ import annotations

import math

import pytest
import torch

from llmprune.errors import LlmpruneError
from llmprune.eval.ppl import perplexity, perplexity_windows


class _Tok:
    def __call__(self, text, add_special_tokens=False, return_attention_mask=False):
        return {"input_ids": [int(t) for t in text.split()]}


def test_windows_drop_the_tail_and_respect_max():
    ids = torch.arange(23)
    w = perplexity_windows(ids, 5)
    assert w.shape == (4, 5) and w[1].tolist() == [5, 6, 7, 8, 9]
    assert perplexity_windows(ids, 5, max_windows=2).shape == (2, 5)


@pytest.mark.parametrize("seq_len", [1, 0, -3])
def test_seq_len_must_exceed_one(seq_len):
    with pytest.raises(LlmpruneError, match="seq-len must be > 1"):
        perplexity_windows(torch.arange(10), seq_len)


def test_ppl_matches_a_hand_computed_value(make_tiny):
    model = make_tiny("llama", seed=1)
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(0, 128, (37,), generator=g).tolist()
    text = " ".join(map(str, ids))
    ppl, windows = perplexity(model, _Tok(), text, seq_len=8, batch_size=3, progress=False)
    assert windows == 4
    # by hand: each window alone, every predicted token's -log p in float64, then exp(mean)
    total, count = 0.0, 0
    for w in range(4):
        win = ids[w * 8 : (w + 1) * 8]
        with torch.no_grad():
            logits = model(input_ids=torch.tensor([win])).logits[0].double()
        for t in range(7):
            row = logits[t]
            total -= (row[win[t + 1]] - torch.logsumexp(row, 0)).item()
            count += 1
    assert count == 28
    assert ppl == pytest.approx(math.exp(total / count), rel=1e-5)
    # batch size does not change the result
    ppl1, _ = perplexity(model, _Tok(), text, seq_len=8, batch_size=1, progress=False)
    assert ppl1 == pytest.approx(ppl, rel=1e-6)


def test_text_shorter_than_a_window():
    with pytest.raises(LlmpruneError, match="fewer than one window"):
        perplexity_windows(torch.arange(3), 8)
