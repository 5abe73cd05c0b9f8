"""Zero-shot scoring: lm-eval's picks on hand-made log-likelihoods, and agreement with lm-eval itself."""

from __future__ import annotations

import math

import pytest

from llmprune.eval.harness import loglikelihoods, make_lm, reference_evaluate
from llmprune.eval.tasks import Example, load_task
from llmprune.eval.zeroshot import evaluate_task, pick, score_examples, task_loglikelihoods
from tests.eval.helpers import FakeLM, summed_logprob

pytest.importorskip("lm_eval")


def _ex(label, norm_lens, n=None):
    n = n or len(norm_lens)
    return Example(id="x", requests=tuple(("c", f" {i}") for i in range(n)), label=label, norm_lens=tuple(norm_lens))


def test_pick_acc_and_acc_norm_by_hand():
    # raw: -4 > -6 picks 0; per character: -4/2 = -2 < -6/6 = -1 picks 1
    assert pick([-4.0, -6.0], [2, 6]) == (0, 1)
    # ties go to the first choice, as numpy's argmax in lm-eval
    assert pick([-3.0, -3.0, -5.0], [3, 3, 1]) == (0, 0)
    assert pick([-9.0, -1.0, -2.0], [9, 1, 4]) == (1, 2)  # norm: -1, -1, -0.5


def test_score_examples_by_hand():
    examples = [_ex(0, [2, 6]), _ex(1, [2, 6]), _ex(2, [9, 1, 4]), _ex(1, [1, 1])]
    lls = [[-4.0, -6.0], [-4.0, -6.0], [-9.0, -1.0, -2.0], [-2.0, -1.0]]
    acc, acc_norm, picks, picks_norm = score_examples(examples, lls)
    assert picks == [0, 0, 1, 1] and picks_norm == [1, 1, 2, 1]
    assert acc == 2 / 4 and acc_norm == 3 / 4


def test_evaluate_task_maps_results_back_to_examples(choice_task):
    task = load_task(str(choice_task))
    table = {}
    for ex in task.examples:  # make the gold choice best everywhere except on example "b"
        for j, req in enumerate(ex.requests):
            table[req] = -1.0 if (j == ex.label) != (ex.id == "b") else -50.0
    lm = FakeLM(table)
    r = evaluate_task(lm, task, progress=False, scorer="lm-eval")
    assert lm.seen == [req for ex in task.examples for req in ex.requests]
    assert r.acc == 5 / 6 and r.n == 6 and r.total == 6
    assert r.picks == (0, 1, 1, 3, 1, 0)


def test_lm_eval_loglikelihood_is_the_summed_continuation_logprob(byte_model, byte_tok):
    """lm-eval's number is sum log p(continuation tokens | context), whatever the batching."""
    model = byte_model("llama", seed=1)
    reqs = [("The cat sat on the", " mat"), ("Q: 2+2?\nA:", " 4"), ("x", " a much longer continuation")]
    got = loglikelihoods(make_lm(model, byte_tok, batch_size=2), reqs, progress=False)
    for (ctx, cont), value in zip(reqs, got, strict=True):
        want = summed_logprob(model, byte_tok, ctx, cont)
        assert math.isclose(value, want, rel_tol=1e-5, abs_tol=1e-4)


@pytest.mark.parametrize("scorer", ["shared-prefix", "lm-eval"])
@pytest.mark.parametrize(("fixture", "family"), [("choice_task", "llama"), ("context_task", "qwen2")])
def test_same_picks_and_accuracy_as_lm_eval(request, fixture, family, scorer, byte_model, byte_tok):
    """Our requests + picks equal lm-eval's own task pipeline (ConfigurableTask + simple_evaluate)."""
    task = load_task(str(request.getfixturevalue(fixture)))
    lm = make_lm(byte_model(family, seed=3), byte_tok, batch_size=3)
    ours = evaluate_task(lm, task, progress=False, scorer=scorer, batch_size=3)
    ref = reference_evaluate(lm, task)
    assert len(ref["loglikelihoods"]) == len(task.examples)
    mine = task_loglikelihoods(lm, task, progress=False, scorer=scorer)
    for a, b in zip(mine, ref["loglikelihoods"], strict=True):
        assert a == pytest.approx(b, rel=1e-6, abs=1e-5)
    assert [float(p == ex.label) for p, ex in zip(ours.picks, task.examples, strict=True)] == ref["per_example_acc"]
    assert [float(p == ex.label) for p, ex in zip(ours.picks_norm, task.examples, strict=True)] == ref[
        "per_example_acc_norm"
    ]
    assert ours.acc == pytest.approx(ref["acc"]) and ours.acc_norm == pytest.approx(ref["acc_norm"])
    assert ours.picks != ours.picks_norm  # the length normalisation changes some picks: both paths are exercised
