"""Task files: both forms load; malformed files fail naming the line and the problem."""

from __future__ import annotations

import json

import pytest

from llmprune.errors import LlmpruneError
from llmprune.eval.tasks import load_task, resolve_task
from tests.eval.helpers import CHOICE_ROWS, CONTEXT_ROWS, write_jsonl


def test_choices_form_requests_and_norm_lengths(choice_task):
    task = load_task(str(choice_task))
    assert task.name == "toy_choices" and task.total == len(CHOICE_ROWS) == len(task.examples)
    ex = task.examples[0]
    assert ex.id == "a" and ex.label == 0
    assert ex.requests == tuple(("Question: what is red?\nAnswer:", c) for c in [" blood", " grass", " the sky"])
    # lm-eval divides by the length of doc_to_choice's string: the choice without the target delimiter
    assert ex.norm_lens == (5, 5, 7)
    assert task.examples[4].norm_lens == (4, 15)  # characters, not bytes ("très")
    assert task.examples[5].norm_lens == (11, 9)  # only the one delimiter space is stripped


def test_contexts_form_requests_and_norm_lengths(context_task):
    task = load_task(str(context_task))
    ex = task.examples[2]
    assert ex.requests == (("A", " ends here"), ("The long context B", " ends here"), ("C c", " ends here"))
    assert ex.label == 2 and ex.norm_lens == (1, 18, 3)


def test_limit_keeps_the_first_examples(choice_task):
    task = load_task(str(choice_task), limit=2)
    assert [e.id for e in task.examples] == ["a", "b"] and task.total == 6
    with pytest.raises(LlmpruneError, match="--limit must be >= 1"):
        load_task(str(choice_task), limit=0)


def test_ids_default_to_the_example_index(tmp_path):
    f = write_jsonl(tmp_path / "t.jsonl", [{"context": "x", "choices": [" a", " b"], "label": 1}, ""])
    assert load_task(str(f)).examples[0].id == "0"


def test_named_task_is_read_from_the_data_dir(tmp_path, monkeypatch):
    (tmp_path / "tasks").mkdir()
    write_jsonl(tmp_path / "tasks" / "mytask.jsonl", CONTEXT_ROWS)
    monkeypatch.setenv("LLMPRUNE_DATA_DIR", str(tmp_path))
    name, path = resolve_task("mytask")
    assert name == "mytask" and path == tmp_path / "tasks" / "mytask.jsonl"
    assert len(load_task("mytask").examples) == 3


def test_unknown_task_lists_the_known_ones(tmp_path, monkeypatch):
    (tmp_path / "tasks").mkdir()
    write_jsonl(tmp_path / "tasks" / "piqa.jsonl", CHOICE_ROWS)
    monkeypatch.setenv("LLMPRUNE_DATA_DIR", str(tmp_path))
    with pytest.raises(LlmpruneError, match=r"unknown task 'nosuch'.*Known tasks: piqa"):
        load_task("nosuch")
    with pytest.raises(LlmpruneError, match="task file not found"):
        load_task(str(tmp_path / "missing.jsonl"))
    monkeypatch.delenv("LLMPRUNE_DATA_DIR")
    with pytest.raises(LlmpruneError, match="LLMPRUNE_DATA_DIR is not set"):
        load_task("piqa")


GOOD = {"context": "c", "choices": [" a", " b"], "label": 0}


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("{not json", "invalid JSON"),
        ("[1, 2]", "expected a JSON object, got list"),
        ({"question": "q"}, "missing fields"),
        ({"context": "c", "choices": [" a", " b"]}, "missing 'label'"),
        ({"context": "c", "label": 0}, "missing 'choices'"),
        ({"context": "", "choices": [" a", " b"], "label": 0}, "'context' must be a non-empty string"),
        ({"context": "c", "choices": " a", "label": 0}, "'choices' must be a list of strings"),
        ({"context": "c", "choices": [" a", 3], "label": 0}, "'choices' must be a list of strings"),
        ({"context": "c", "choices": [" a"], "label": 0}, "'choices' needs at least 2 entries"),
        ({"context": "c", "choices": [" a", " "], "label": 0}, "empty choice"),
        ({"context": "c", "choices": [" a", " b"], "label": 2}, "'label' 2 out of range 0..1"),
        ({"context": "c", "choices": [" a", " b"], "label": "0"}, "'label' must be an integer"),
        ({"context": "c", "choices": [" a", " b"], "label": True}, "'label' must be an integer"),
        ({"contexts": ["a", "b"], "label": 0}, "missing 'continuation'"),
        ({"contexts": ["a", "b"], "continuation": "", "label": 0}, "'continuation' must be a non-empty string"),
        ({"contexts": ["a", ""], "continuation": " x", "label": 0}, "empty context"),
        ({"contexts": ["a", " \n"], "continuation": " x", "label": 0}, "empty context"),
        ({"context": "  ", "choices": [" a", " b"], "label": 0}, "'context' must be a non-empty string"),
        ({"contexts": ["a", "b"], "continuation": " x", "label": 0}, "uses the 'contexts' form but line 1"),
        ({"context": "c", "contexts": ["a", "b"], "continuation": " x", "label": 0}, "mixes the two forms"),
    ],
)
def test_malformed_line_is_named(tmp_path, line, problem):
    f = write_jsonl(tmp_path / "bad.jsonl", [GOOD, "", GOOD, line])
    with pytest.raises(LlmpruneError) as e:
        load_task(str(f))
    assert f"{f}:4:" in str(e.value) and problem in str(e.value)


def test_line_separators_inside_strings_do_not_split_lines(tmp_path):
    """JSON writers leave U+2028 / U+0085 unescaped (ensure_ascii=False); JSON Lines splits at newlines only."""
    rows = [{"context": "one\u2028two\u0085three", "choices": [" a", " b\u2029c"], "label": 1}, GOOD]
    f = tmp_path / "seps.jsonl"
    f.write_text("\r\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\r\n", encoding="utf-8")
    task = load_task(str(f))
    assert len(task.examples) == 2 and task.examples[0].requests[1] == ("one\u2028two\u0085three", " b\u2029c")


def test_choices_without_the_target_delimiter_warn(tmp_path):
    f = write_jsonl(tmp_path / "nospace.jsonl", [GOOD, {"context": "c", "choices": ["a", " b"], "label": 0}])
    with pytest.warns(UserWarning, match="1 example.*line 2.*without the leading space"):
        load_task(str(f))


def test_empty_file_is_an_error(tmp_path):
    f = tmp_path / "empty.jsonl"
    f.write_text("\n\n")
    with pytest.raises(LlmpruneError, match="no examples"):
        load_task(str(f))


def test_shared_task_files_are_valid():
    """The four shipped tasks load with their documented sizes (skipped without the shared data)."""
    sizes = {"boolq": 3270, "piqa": 1838, "hellaswag": 10042, "arc_easy": 2376}
    try:
        tasks = {n: load_task(n, limit=1) for n in sizes}
    except LlmpruneError as e:
        pytest.skip(f"shared task data not available: {e}")
    assert {n: t.total for n, t in tasks.items()} == sizes
