"""Shared-prefix scoring: packing and masks by hand, and the same log-likelihoods as lm-eval."""

from __future__ import annotations

import math

import pytest
import torch

from llmprune.errors import LlmpruneError
from llmprune.eval.harness import loglikelihoods, make_lm
from llmprune.eval.shared_prefix import (
    Packed,
    batches,
    lm_eval_encodings,
    pack,
    shared_prefix_loglikelihoods,
    tree_mask,
)
from llmprune.eval.tasks import load_task
from llmprune.eval.zeroshot import evaluate_task
from tests.eval.helpers import summed_logprob

pytest.importorskip("lm_eval")


def test_pack_by_hand():
    # context 10 11 12; choices [20 21 22] and [30]: inputs are the context, then each choice minus its last token
    (p,) = pack([10, 11, 12], [(0, [20, 21, 22]), (1, [30])], max_length=100)
    assert p.tokens == (10, 11, 12, 20, 21)
    assert p.positions == (0, 1, 2, 3, 4)
    assert p.segments == (0, 0, 0, 1, 1)
    # first tokens of both choices are predicted by the last context position (2)
    assert p.targets == ((2, 20, 0), (3, 21, 0), (4, 22, 0), (2, 30, 1))
    (q,) = pack([7], [(0, [1, 2]), (1, [3, 4, 5])], max_length=100)
    assert q.tokens == (7, 1, 3, 4) and q.positions == (0, 1, 1, 2) and q.segments == (0, 1, 2, 2)
    assert q.targets == ((0, 1, 0), (1, 2, 0), (0, 3, 1), (2, 4, 1), (3, 5, 1))


def test_pack_truncates_like_lm_eval():
    """Too long for the window: each request alone, (context + continuation)[-(max_length + 1):]."""
    ctx, a, b = list(range(1, 9)), [20, 21], [30, 31, 32]
    out = pack(ctx, [(0, a), (1, b)], max_length=8)
    assert len(out) == 2
    for p, cont in zip(out, [a, b], strict=True):
        whole = (ctx + cont)[-9:]
        assert list(p.tokens) == whole[:-1] and p.positions == tuple(range(8))
        assert [t[1] for t in p.targets] == cont
    with pytest.raises(Exception, match="does not fit"):
        pack([1], [(0, list(range(20)))], max_length=8)


def test_tree_mask_by_hand():
    p = Packed(tokens=(1, 2, 3, 4, 5), positions=(0, 1, 2, 2, 3), segments=(0, 0, 1, 2, 2), targets=())
    short = Packed(tokens=(1, 2), positions=(0, 1), segments=(0, 0), targets=())
    m = tree_mask([p, short], 5, "cpu")
    assert m.shape == (2, 1, 5, 5)
    want = torch.tensor(
        [
            [1, 0, 0, 0, 0],
            [1, 1, 0, 0, 0],
            [1, 1, 1, 0, 0],  # choice 1 sees the context and itself
            [1, 1, 0, 1, 0],  # choice 2 does not see choice 1
            [1, 1, 0, 1, 1],
        ],
        dtype=torch.bool,
    )
    assert torch.equal(m[0, 0], want)
    pad = torch.tensor([[1, 0, 0, 0, 0], [1, 1, 0, 0, 0], [0, 0, 1, 0, 0], [0, 0, 0, 1, 0], [0, 0, 0, 0, 1]])
    assert torch.equal(m[1, 0], pad.bool())  # padding rows only see themselves (no empty softmax)


def test_batches_longest_first():
    ps = [Packed(tuple(range(n)), tuple(range(n)), (0,) * n, ()) for n in (3, 9, 1, 5, 7)]
    assert [[len(p) for p in b] for b in batches(ps, 2)] == [[9, 7], [5, 3], [1]]
    # a mask budget of 100 elements: 9 x 9 alone, then 7 x 7 (two would need 2 x 49 = 98: fits)
    assert [[len(p) for p in b] for b in batches(ps, 4, mask_budget=100)] == [[9], [7, 5], [3, 1]]


def test_encodings_are_lm_eval_own(byte_model, byte_tok):
    lm = make_lm(byte_model("llama"), byte_tok)
    reqs = [("The cat sat on the", " mat"), ("Trailing space ", "x"), ("", " empty context")]
    enc = lm_eval_encodings(lm, reqs)
    assert enc[0] == lm._encode_pair(*reqs[0]) and enc[1] == lm._encode_pair(*reqs[1])
    assert enc[1][1][0] == byte_tok(" ").input_ids[0]  # the context's trailing space moves to the continuation
    assert enc[2][0] == [lm.prefix_token_id]  # empty context: lm-eval conditions on its prefix token
    assert "_loglikelihood_tokens" not in vars(lm)  # the recorder is removed again


@pytest.mark.parametrize("per_row", [True, False], ids=["logits-per-row", "logits-union"])
@pytest.mark.parametrize("family", ["llama", "qwen2", "mistral"])
def test_same_loglikelihoods_as_lm_eval(family, per_row, byte_model, byte_tok, monkeypatch):
    """Mixed lengths, shared and different contexts, an empty context, batches with padding.

    Both ways of keeping logits: a boolean [B, L] `logits_to_keep` (transformers >= 5.2x) and, for older
    versions, the union of scored positions for every row.
    """
    from llmprune.eval import shared_prefix

    assert shared_prefix.keeps_positions_per_row(byte_model(family))  # the pinned transformers has it
    if not per_row:
        monkeypatch.setattr(shared_prefix, "keeps_positions_per_row", lambda model: False)
    lm = make_lm(byte_model(family, seed=2), byte_tok, batch_size=3)
    groups = [
        [("Question: what is red?\nAnswer:", c) for c in (" blood", " grass", " the clear blue sky")],
        [("The cat sat on the", " mat"), ("The cat sat on the", " moon")],
        [("A", " b"), ("B", " b")],  # contexts differ: scored separately
        [("", " no context at all")],
        [("Numbers: 1 2 3", c) for c in (" 4 5", " seven", " x", " 4")],
    ]
    flat = [r for g in groups for r in g]
    want = loglikelihoods(lm, flat, progress=False)
    for bs in (1, 2, 8):
        got = [x for g in shared_prefix_loglikelihoods(lm, groups, batch_size=bs, progress=False) for x in g]
        assert got == pytest.approx(want, rel=1e-5, abs=1e-4)


def test_long_inputs_are_truncated_as_lm_eval(byte_model, byte_tok):
    lm = make_lm(byte_model("llama", seed=4), byte_tok, batch_size=2)
    lm._max_length = 16  # a window shorter than the requests below
    groups = [[("A long context that does not fit in sixteen tokens", c) for c in (" yes", " no thanks")]]
    want = loglikelihoods(lm, groups[0], progress=False)
    got = shared_prefix_loglikelihoods(lm, groups, progress=False)[0]
    assert got == pytest.approx(want, rel=1e-5, abs=1e-4)


def test_sliding_window_models(byte_model, byte_tok):
    """Mistral's sliding window: a request within it scores as lm-eval; a longer one is refused."""
    from llmprune.eval.shared_prefix import sliding_window

    assert sliding_window(byte_model("llama")) is None
    assert sliding_window(byte_model("qwen2", use_sliding_window=False, sliding_window=8)) is None
    model = byte_model("mistral", seed=3, sliding_window=24)
    assert sliding_window(model) == 24
    lm = make_lm(model, byte_tok)
    short = [[("Short one", " a"), ("Short one", " bb")]]
    want = loglikelihoods(lm, short[0], progress=False)
    assert shared_prefix_loglikelihoods(lm, short, progress=False)[0] == pytest.approx(want, rel=1e-5, abs=1e-4)
    long = [[("A context longer than twenty-four bytes", " yes"), ("A context longer than twenty-four bytes", " no")]]
    with pytest.raises(LlmpruneError, match="24-token sliding attention window.*--scorer lm-eval"):
        shared_prefix_loglikelihoods(lm, long, progress=False)


def test_a_choice_without_tokens_of_its_own_is_an_error(byte_model, byte_tok, monkeypatch):
    from llmprune.eval import shared_prefix

    lm = make_lm(byte_model("llama"), byte_tok)
    real = shared_prefix.lm_eval_encodings
    monkeypatch.setattr(  # a tokenizer that merges the choice into the context's last token
        shared_prefix,
        "lm_eval_encodings",
        lambda lm, reqs: [(c, t[:0] if i == 1 else t) for i, (c, t) in enumerate(real(lm, reqs))],
    )
    with pytest.raises(LlmpruneError, match="choice 'ing' .*encodes to no tokens"):
        shared_prefix_loglikelihoods(lm, [[("Sing", " a"), ("Sing", "ing")]], progress=False)


def test_padding_does_not_use_the_tokenizer_pad_id(byte_model, byte_tok):
    """lm-eval may add a pad token beyond the embedding rows; padding is masked, so it uses id 0."""
    lm = make_lm(byte_model("llama", seed=6), byte_tok)
    groups = [[("Longer context here", " a"), ("Longer context here", " b")], [("Hi", " there")]]
    want = shared_prefix_loglikelihoods(lm, groups, batch_size=2, progress=False)
    lm.tokenizer.pad_token_id = 10_000  # no such embedding row
    assert shared_prefix_loglikelihoods(lm, groups, batch_size=2, progress=False) == want


def test_sum_of_token_logprobs_by_hand(byte_model, byte_tok):
    model = byte_model("llama", seed=1)
    lm = make_lm(model, byte_tok)
    ctx, conts = "Q: 2+2?\nA:", [" 4", " five"]
    got = shared_prefix_loglikelihoods(lm, [[(ctx, c) for c in conts]], progress=False)[0]
    for cont, value in zip(conts, got, strict=True):
        want = summed_logprob(model, byte_tok, ctx, cont)
        assert math.isclose(value, want, rel_tol=1e-5, abs_tol=1e-4)


@pytest.mark.slow
def test_shared_prefix_equals_lm_eval_on_smollm2(smollm2):
    """The real model and the four shared task files: same log-likelihoods, same picks."""
    from llmprune.eval.tasks import available_tasks

    names = [n for n in ("boolq", "piqa", "hellaswag", "arc_easy") if n in available_tasks()]
    if not names:
        pytest.skip("shared task files not available ($LLMPRUNE_DATA_DIR/tasks)")
    model, tok = smollm2
    lm = make_lm(model, tok, batch_size=8)
    for name in names:
        task = load_task(name, limit=3)
        fast = evaluate_task(lm, task, progress=False, scorer="shared-prefix", batch_size=4)
        ref = evaluate_task(lm, task, progress=False, scorer="lm-eval")
        assert (fast.picks, fast.picks_norm) == (ref.picks, ref.picks_norm), name
        a = shared_prefix_loglikelihoods(lm, [ex.requests for ex in task.examples], progress=False)
        b = loglikelihoods(lm, [r for ex in task.examples for r in ex.requests], progress=False)
        assert [x for g in a for x in g] == pytest.approx(b, rel=1e-4, abs=1e-3), name
