"""Resumable zero-shot runs: what the cache keeps, what a rerun scores again, and bad cache files."""

from __future__ import annotations

import json

import pytest

from llmprune.errors import LlmpruneError
from llmprune.eval import zeroshot as zs
from llmprune.eval.cache import ResultCache, check_cache_file, example_key, model_fingerprint
from llmprune.eval.tasks import load_task
from llmprune.eval.zeroshot import evaluate_task
from tests.eval.helpers import CHOICE_ROWS, FakeLM, run_cli, write_jsonl


def _table(task):
    return {req: -float(j + 1 + len(ex.id)) for ex in task.examples for j, req in enumerate(ex.requests)}


def test_rerun_scores_only_what_the_cache_lacks(tmp_path, choice_task, monkeypatch):
    monkeypatch.setattr(zs, "CHUNK", 2)  # several appends per task
    task = load_task(str(choice_task))
    path = tmp_path / "c.jsonl"
    lm = FakeLM(_table(task))
    first = evaluate_task(lm, task, progress=False, scorer="lm-eval", cache=ResultCache(path, "m1"))
    assert first.cached == 0 and len(lm.seen) == sum(len(ex.requests) for ex in task.examples)
    lines = path.read_text().splitlines()
    assert len(lines) == 1 + len(task.examples) and json.loads(lines[0])["model"] == "m1"

    again = FakeLM(_table(task))
    second = evaluate_task(again, task, progress=False, scorer="lm-eval", cache=ResultCache(path, "m1"))
    assert again.seen == [] and second.cached == len(task.examples)
    assert (second.acc, second.acc_norm, second.picks) == (first.acc, first.acc_norm, first.picks)

    # drop two examples' lines (an interrupted run): only those are scored again
    path.write_text("\n".join(lines[:-2]) + "\n")
    third_lm = FakeLM(_table(task))
    third = evaluate_task(third_lm, task, progress=False, scorer="lm-eval", cache=ResultCache(path, "m1"))
    assert third_lm.seen == [r for ex in task.examples[-2:] for r in ex.requests]
    assert third.picks == first.picks and third.cached == len(task.examples) - 2


def test_truncated_last_line_is_dropped_and_rescored(tmp_path, choice_task):
    task = load_task(str(choice_task))
    path = tmp_path / "c.jsonl"
    evaluate_task(FakeLM(_table(task)), task, progress=False, scorer="lm-eval", cache=ResultCache(path, "m"))
    path.write_text(path.read_text()[:-15])  # killed mid-write
    cache = ResultCache(path, "m")
    assert len(cache.entries) == len(task.examples) - 1
    assert all(json.loads(line) for line in path.read_text().splitlines())  # the partial line is gone


def test_another_model_or_bad_lines_are_errors(tmp_path, choice_task):
    task = load_task(str(choice_task))
    path = tmp_path / "c.jsonl"
    evaluate_task(FakeLM(_table(task)), task, progress=False, scorer="lm-eval", cache=ResultCache(path, "m"))
    with pytest.raises(LlmpruneError, match="another model"):
        ResultCache(path, "other")
    lines = path.read_text().splitlines()
    path.write_text("\n".join([lines[0], "{not json", *lines[1:]]) + "\n")
    with pytest.raises(LlmpruneError, match="line 2 is not JSON"):
        ResultCache(path, "m")
    path.write_text("\n".join([lines[0], json.dumps({"task": "x"}), *lines[1:]]) + "\n")
    with pytest.raises(LlmpruneError, match="line 2 is not a cached result"):
        ResultCache(path, "m")


def test_one_writer_at_a_time(tmp_path):
    held = ResultCache(tmp_path / "c.jsonl", "m")
    with pytest.raises(LlmpruneError, match="in use by another llmprune eval"):
        ResultCache(tmp_path / "c.jsonl", "m")
    held.close()  # released when the run ends
    with ResultCache(tmp_path / "c.jsonl", "m") as again:
        assert again.path.exists()
    ResultCache(tmp_path / "c.jsonl", "m")  # the `with` released it


def test_a_lock_that_the_filesystem_refuses_is_not_called_in_use(tmp_path, monkeypatch):
    import errno

    fcntl = pytest.importorskip("fcntl")

    def no_locks(handle, flags):
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(fcntl, "flock", no_locks)
    with pytest.raises(LlmpruneError, match="may not support locks.*local disk"):
        ResultCache(tmp_path / "c.jsonl", "m")


def test_zeroshot_releases_the_lock_when_interrupted(tmp_path, byte_model, byte_tok, choice_task, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(zs, "evaluate_task", interrupted)
    path = tmp_path / "c.jsonl"
    with pytest.raises(KeyboardInterrupt):
        zs.zeroshot(byte_model("llama"), byte_tok, [str(choice_task)], cache=path, progress=False)
    ResultCache(path, json.loads(path.read_text().splitlines()[0])["model"]).close()  # not "in use"


def test_a_whole_last_line_without_its_newline_is_kept(tmp_path, choice_task):
    task = load_task(str(choice_task))
    path = tmp_path / "c.jsonl"
    evaluate_task(FakeLM(_table(task)), task, progress=False, scorer="lm-eval", cache=ResultCache(path, "m"))
    path.write_text(path.read_text().rstrip("\n"))  # killed between a line and its newline
    cache = ResultCache(path, "m")
    assert len(cache.entries) == len(task.examples) and path.read_text().endswith("}\n")
    cache.put("other", task.examples[:1], [[-1.0] * len(task.examples[0].requests)])
    cache.close()
    assert len(ResultCache(path, "m").entries) == len(task.examples) + 1  # the next line did not fuse


def test_blank_lines_are_skipped(tmp_path, choice_task):
    task = load_task(str(choice_task))
    path = tmp_path / "c.jsonl"
    evaluate_task(FakeLM(_table(task)), task, progress=False, scorer="lm-eval", cache=ResultCache(path, "m"))
    lines = path.read_text().splitlines()
    path.write_text("\n".join([lines[0], "", *lines[1:], "", ""]) + "\n")
    assert len(ResultCache(path, "m").entries) == len(task.examples)


def test_older_format_and_read_only_files_fail_before_any_work(tmp_path, monkeypatch):
    old = tmp_path / "old.jsonl"
    old.write_text(json.dumps({"format": "llmprune-zeroshot-cache", "version": 1, "model": "m"}) + "\n")
    with pytest.raises(LlmpruneError, match="format version 1; this llmprune reads version 2"):
        check_cache_file(old)
    with pytest.raises(LlmpruneError, match="format version 1"):
        ResultCache(old, "m")
    ok = tmp_path / "ok.jsonl"
    ResultCache(ok, "m").close()
    from llmprune.eval import cache as cache_mod

    monkeypatch.setattr(cache_mod.os, "access", lambda path, mode: False)  # (root may write anything)
    with pytest.raises(LlmpruneError, match="not writable"):
        check_cache_file(ok)


def test_non_finite_loglikelihoods_are_an_error_and_not_cached(tmp_path, choice_task):
    task = load_task(str(choice_task))
    table = _table(task)
    table[task.examples[2].requests[1]] = float("nan")
    path = tmp_path / "c.jsonl"
    with pytest.raises(LlmpruneError, match=f"example {task.examples[2].id} .*not finite"):
        evaluate_task(FakeLM(table), task, progress=False, scorer="lm-eval", cache=ResultCache(path, "m"))
    assert ResultCache(path, "m").entries == {}  # the chunk holding it was not kept
    with pytest.raises(LlmpruneError, match="not finite"):
        evaluate_task(FakeLM(table), task, progress=False, scorer="lm-eval")


def test_keys_follow_the_requests(tmp_path, choice_task):
    a, b = load_task(str(choice_task)).examples[:2]
    assert example_key(a) != example_key(b) and example_key(a) == example_key(a)
    cache = ResultCache(tmp_path / "c.jsonl", "m")
    cache.put("t", [a], [[-1.0] * len(a.requests)])
    assert cache.get("t", a) == [-1.0] * len(a.requests)
    assert cache.get("t", b) is None and cache.get("other_task", a) is None


def test_fingerprint_changes_with_weights_and_tokenizer(byte_model, byte_tok):
    import torch

    m = byte_model("llama", seed=0)
    fp = model_fingerprint(m, byte_tok)
    assert fp == model_fingerprint(byte_model("llama", seed=0), byte_tok)
    assert fp != model_fingerprint(byte_model("llama", seed=1), byte_tok)
    with torch.no_grad():
        m.model.layers[0].mlp.down_proj.weight[0, 0] += 1e-3
    assert model_fingerprint(m, byte_tok) != fp
    assert model_fingerprint(byte_model("llama", seed=0), byte_tok, window=16) != fp  # lm-eval's window
    same_weights = byte_model("llama", seed=0)
    same_weights.config.max_position_embeddings = 1024  # config, not weights
    assert model_fingerprint(same_weights, byte_tok) != fp
    byte_tok.add_tokens(["<new>"])
    assert model_fingerprint(byte_model("llama", seed=0), byte_tok) != fp


def test_check_cache_file(tmp_path):
    check_cache_file(tmp_path / "new.jsonl")  # a new file is fine
    with pytest.raises(LlmpruneError, match="is a folder"):
        check_cache_file(tmp_path)
    other = write_jsonl(tmp_path / "task.jsonl", CHOICE_ROWS)
    with pytest.raises(LlmpruneError, match="not an llmprune zero-shot cache"):
        check_cache_file(other)


def test_cli_cache_resumes_with_the_same_numbers(tmp_path, byte_model, byte_tok, choice_task, capsys):
    d = tmp_path / "tiny"
    byte_model("llama", seed=5).save_pretrained(d)
    byte_tok.save_pretrained(d)
    cache, outs = tmp_path / "zs.jsonl", []
    for i in range(2):
        out = tmp_path / f"r{i}.json"
        argv = ["eval", str(d), "--tasks", str(choice_task), "--cache", str(cache), "--json", str(out)]
        assert run_cli(argv) in (None, 0)
        outs.append(json.loads(out.read_text())["tasks"]["toy_choices"])
    assert outs[0]["cached"] == 0 and outs[1]["cached"] == outs[1]["n"]
    assert (outs[0]["acc"], outs[0]["acc_norm"]) == (outs[1]["acc"], outs[1]["acc_norm"])
    # a file that is not a cache fails before the model is loaded, and is left alone
    before = choice_task.read_text()
    assert run_cli(["eval", str(d), "--tasks", str(choice_task), "--cache", str(choice_task)]) == 2
    assert "not an llmprune zero-shot cache" in capsys.readouterr().err and choice_task.read_text() == before
