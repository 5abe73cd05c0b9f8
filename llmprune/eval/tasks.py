"""Zero-shot multiple-choice task files: find, read and validate them.

A task is a JSON Lines file, one example per line, in one of two forms (see the shared data README):

- choices form: `{"context": str, "choices": [str, ...], "label": int}`: each choice already carries
  lm-evaluation-harness's `target_delimiter` (a leading space); the scored string is context + choice.
- contexts form (WinoGrande-style partial evaluation): `{"contexts": [str, ...], "continuation": str,
  "label": int}`: the candidates differ in the context and share one continuation.

`id` is optional in both. A task named `NAME` is read from `$LLMPRUNE_DATA_DIR/tasks/NAME.jsonl`; a path
to any file in this format works too.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from pathlib import Path

from llmprune.data.sources import DATA_DIR_ENV, data_dir
from llmprune.errors import LlmpruneError

TARGET_DELIMITER = " "  # lm-eval's default, already part of every choice / continuation in our files


@dataclass(frozen=True)
class Example:
    """One multiple-choice example, as the (context, continuation) requests lm-eval scores.

    `norm_lens[i]` is what lm-eval divides choice i's log-likelihood by for `acc_norm`: the character
    length of the choice as lm-eval's `doc_to_choice` returns it (without the target delimiter).
    """

    id: str
    requests: tuple[tuple[str, str], ...]
    label: int
    norm_lens: tuple[int, ...]


@dataclass(frozen=True)
class Task:
    name: str
    path: Path
    examples: tuple[Example, ...]
    total: int  # examples in the file (before --limit)


def available_tasks() -> list[str]:
    """Names of the task files in `$LLMPRUNE_DATA_DIR/tasks/`."""
    root = data_dir()
    if root is None or not (root / "tasks").is_dir():
        return []
    return sorted(p.stem for p in (root / "tasks").glob("*.jsonl"))


def resolve_task(spec: str) -> tuple[str, Path]:
    """Map a task name or a file path to (name, file)."""
    if not spec or not spec.strip():
        raise LlmpruneError("empty task name; pass e.g. --tasks boolq,piqa or a path to a .jsonl task file")
    p = Path(spec).expanduser()
    if p.is_file():
        return p.stem, p
    looks_like_path = "/" in spec or spec.endswith(".jsonl")
    root = data_dir()
    if not looks_like_path and root is not None:
        f = root / "tasks" / f"{spec}.jsonl"
        if f.is_file():
            return spec, f
    if looks_like_path:
        raise LlmpruneError(f"task file not found: {p}; check the path")
    if root is None:
        raise LlmpruneError(
            f"unknown task {spec!r}: ${DATA_DIR_ENV} is not set. Set it to the data folder holding "
            f"tasks/{spec}.jsonl, or pass the path of a task file"
        )
    known = available_tasks()
    raise LlmpruneError(
        f"unknown task {spec!r}: no {root / 'tasks' / (spec + '.jsonl')}. "
        f"Known tasks: {', '.join(known) if known else '(none)'}; or pass the path of a .jsonl task file"
    )


def _str_list(value, key: str, where: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise LlmpruneError(f"{where}: '{key}' must be a list of strings")
    if len(value) < 2:
        raise LlmpruneError(f"{where}: '{key}' needs at least 2 entries, got {len(value)}")
    return value


def _strip_delimiter(choice: str) -> str:
    return choice[len(TARGET_DELIMITER) :] if choice.startswith(TARGET_DELIMITER) else choice


def parse_example(obj, where: str, index: int) -> Example:
    """Validate one decoded line; `where` (file:line) prefixes every error."""
    if not isinstance(obj, dict):
        raise LlmpruneError(f"{where}: expected a JSON object, got {type(obj).__name__}")
    has_choices = "context" in obj or "choices" in obj
    has_contexts = "contexts" in obj or "continuation" in obj
    if has_choices and has_contexts:
        raise LlmpruneError(
            f"{where}: mixes the two forms; use either 'context' + 'choices' or 'contexts' + 'continuation'"
        )
    if not has_choices and not has_contexts:
        raise LlmpruneError(
            f"{where}: missing fields; expected 'context', 'choices', 'label' "
            f"(or 'contexts', 'continuation', 'label'), got keys {sorted(obj)}"
        )
    if has_choices:
        for key in ("context", "choices"):
            if key not in obj:
                raise LlmpruneError(f"{where}: missing '{key}'")
        context = obj["context"]
        if not isinstance(context, str) or not context.strip():
            raise LlmpruneError(f"{where}: 'context' must be a non-empty string (not only whitespace)")
        choices = _str_list(obj["choices"], "choices", where)
        bare = [_strip_delimiter(c) for c in choices]
        if any(not b for b in bare):
            raise LlmpruneError(f"{where}: 'choices' holds an empty choice")
        requests = tuple((context, c) for c in choices)
        norm_lens = tuple(len(b) for b in bare)
    else:
        for key in ("contexts", "continuation"):
            if key not in obj:
                raise LlmpruneError(f"{where}: missing '{key}'")
        contexts = _str_list(obj["contexts"], "contexts", where)
        if any(not c.strip() for c in contexts):
            raise LlmpruneError(f"{where}: 'contexts' holds an empty context (or one of only whitespace)")
        cont = obj["continuation"]
        if not isinstance(cont, str) or not cont.strip():
            raise LlmpruneError(f"{where}: 'continuation' must be a non-empty string")
        requests = tuple((c, cont) for c in contexts)
        norm_lens = tuple(len(c) for c in contexts)  # lm-eval's multiple_input: doc_to_choice are the contexts
    if "label" not in obj:
        raise LlmpruneError(f"{where}: missing 'label' (0-based index of the gold choice)")
    label = obj["label"]
    if not isinstance(label, int) or isinstance(label, bool):
        raise LlmpruneError(f"{where}: 'label' must be an integer, got {label!r}")
    if not 0 <= label < len(requests):
        raise LlmpruneError(f"{where}: 'label' {label} out of range 0..{len(requests) - 1}")
    ex_id = obj.get("id", str(index))
    return Example(id=str(ex_id), requests=requests, label=label, norm_lens=norm_lens)


def _form(obj: dict) -> str:
    return "contexts" if "contexts" in obj else "choices"


def read_task_file(path: Path) -> list[Example]:
    """Every example of a task file; raises LlmpruneError naming the line and the problem."""
    try:
        # JSON Lines lines end at "\n" only (str.splitlines would also split inside strings at U+2028)
        lines = [line.removesuffix("\r") for line in path.read_text(encoding="utf-8").split("\n")]
    except UnicodeDecodeError as e:
        raise LlmpruneError(f"{path}: not UTF-8 text ({e})") from e
    examples: list[Example] = []
    first_form, undelimited = None, []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        where = f"{path}:{n}"
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            raise LlmpruneError(f"{where}: invalid JSON ({e.msg} at column {e.colno})") from e
        example = parse_example(obj, where, len(examples))
        examples.append(example)
        form = _form(obj)
        if first_form is None:
            first_form = (form, n)
        elif form != first_form[0]:
            raise LlmpruneError(
                f"{where}: uses the {form!r} form but line {first_form[1]} the {first_form[0]!r} form; "
                f"one task file holds one form"
            )
        if not all(cont.startswith(TARGET_DELIMITER) for _, cont in example.requests):
            undelimited.append(n)
    if not examples:
        raise LlmpruneError(f"{path}: no examples (the file is empty)")
    if undelimited:
        warnings.warn(
            f"{path}: {len(undelimited)} example(s) (first at line {undelimited[0]}) have a choice without the "
            f"leading space lm-eval puts between context and choice; they are scored as context + choice "
            f"exactly, so numbers can differ from lm-eval's. Add the space if the file should follow lm-eval",
            stacklevel=2,
        )
    return examples


def load_task(spec: str, *, limit: int | None = None) -> Task:
    """Read and validate task `spec` (name or path); keep the first `limit` examples."""
    if limit is not None and limit < 1:
        raise LlmpruneError(f"--limit must be >= 1 (got {limit})")
    name, path = resolve_task(spec)
    examples = read_task_file(path)
    kept = examples[:limit] if limit is not None else examples
    return Task(name=name, path=path, examples=tuple(kept), total=len(examples))
