"""`llmprune eval --tasks`: JSON keys, agreement with the library, and clear errors."""

from __future__ import annotations

import json

import pytest

from llmprune.eval.evaluate import evaluate
from llmprune.eval.harness import make_lm
from llmprune.eval.tasks import load_task
from llmprune.eval.zeroshot import evaluate_task
from tests.eval.helpers import CHOICE_ROWS, run_cli, write_jsonl

pytest.importorskip("lm_eval")


@pytest.fixture
def model_dir(tmp_path, byte_model, byte_tok):
    d = tmp_path / "tiny"
    byte_model("llama", seed=5).save_pretrained(d)
    byte_tok.save_pretrained(d)
    return d


def test_eval_tasks_json(tmp_path, model_dir, choice_task, context_task, byte_model, byte_tok):
    out = tmp_path / "res.json"
    argv = ["eval", str(model_dir), "--tasks", f"{choice_task},{context_task}", "--limit", "5", "--json", str(out)]
    assert run_cli(argv) == 0
    res = json.loads(out.read_text())
    assert "ppl" not in res  # --tasks alone skips perplexity
    assert set(res) >= {"model", "params", "tasks", "mean_acc", "mean_acc_norm", "limit", "seconds"}
    assert res["limit"] == 5 and set(res["tasks"]) == {"toy_choices", "toy_contexts"}
    lm = make_lm(byte_model("llama", seed=5), byte_tok, batch_size=4)
    for name, path in [("toy_choices", choice_task), ("toy_contexts", context_task)]:
        want = evaluate_task(lm, load_task(str(path), limit=5), progress=False)
        got = res["tasks"][name]
        assert (got["acc"], got["acc_norm"], got["n"]) == (want.acc, want.acc_norm, min(5, want.total))
    accs = [t["acc"] for t in res["tasks"].values()]
    assert res["mean_acc"] == pytest.approx(sum(accs) / 2)


def test_evaluate_combines_ppl_and_tasks(tmp_path, byte_model, byte_tok, choice_task):
    text = tmp_path / "text.txt"
    text.write_text("The quick brown fox jumps over the lazy dog. " * 20)
    res = evaluate(
        byte_model("llama", seed=5),
        byte_tok,
        ppl=[str(text)],
        seq_len=32,
        max_windows=3,
        tasks=[str(choice_task)],
        limit=2,
        progress=False,
    )
    assert set(res) == {"ppl", "seq_len", "windows", "tasks", "mean_acc", "mean_acc_norm", "limit", "scorer", "seconds"}
    assert res["windows"] == 3 and res["tasks"]["toy_choices"]["n"] == 2


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--tasks", "nosuchtask"], "unknown task 'nosuchtask'"),
        (["--tasks", "./missing/task.jsonl"], "task file not found"),
        (["--tasks", "BAD"], ":2: 'label' 5 out of range 0..1"),
        (["--ppl", "none"], "nothing to evaluate"),
        (["--tasks", "GOOD", "--limit", "0"], "--limit: Input should be greater than or equal to 1 (got 0)"),
        (
            ["--tasks", "GOOD", "--scorer", "fast"],
            "--scorer: Input should be 'shared-prefix' or 'lm-eval' (got 'fast')",
        ),
    ],
)
def test_bad_input_exits_2_with_a_clear_message(tmp_path, model_dir, extra, message, capsys):
    bad = write_jsonl(tmp_path / "bad.jsonl", [CHOICE_ROWS[1], {**CHOICE_ROWS[1], "label": 5}])
    good = write_jsonl(tmp_path / "good.jsonl", CHOICE_ROWS)
    extra = [str(bad) if x == "BAD" else str(good) if x == "GOOD" else x for x in extra]
    assert run_cli(["eval", str(model_dir), *extra]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_missing_model_folder_is_a_clear_error(tmp_path, choice_task, capsys):
    assert run_cli(["eval", str(tmp_path / "no_model"), "--tasks", str(choice_task)]) == 2
    assert "model path not found" in capsys.readouterr().err


@pytest.mark.slow
def test_limit_on_smollm2(tmp_path, smollm2):
    """`eval smollm2-135m --tasks ... --limit N` on the real model and the shared task files."""
    from llmprune.eval.tasks import available_tasks

    if not {"piqa", "arc_easy"} <= set(available_tasks()):
        pytest.skip("shared task files not available ($LLMPRUNE_DATA_DIR/tasks)")
    out = tmp_path / "zs.json"
    assert run_cli(["eval", "smollm2-135m", "--tasks", "piqa,arc_easy", "--limit", "5", "--json", str(out)]) in (
        None,
        0,
    )
    res = json.loads(out.read_text())
    assert res["params"] == 134_515_008 and res["limit"] == 5
    assert {n: (t["n"], t["total"]) for n, t in res["tasks"].items()} == {"piqa": (5, 1838), "arc_easy": (5, 2376)}
    for t in res["tasks"].values():
        assert t["acc"] * 5 == pytest.approx(round(t["acc"] * 5)) and 0 <= t["acc_norm"] <= 1
    # the CLI agrees with the library on the already-loaded model
    model, tok = smollm2
    lm = make_lm(model, tok, batch_size=4)
    want = evaluate_task(lm, load_task("piqa", limit=5), progress=False)
    assert (res["tasks"]["piqa"]["acc"], res["tasks"]["piqa"]["acc_norm"]) == (want.acc, want.acc_norm)
