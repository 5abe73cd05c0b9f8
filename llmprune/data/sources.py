"""Named text sources and their resolution order.

1. an explicit file path (`path=`),
2. `$LLMPRUNE_DATA_DIR/<relative path>` (the layout of the project's shared data folder),
3. the Hugging Face Hub through `datasets`.

When nothing is found, one error lists every place tried and how to provide the data.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from llmprune import hub
from llmprune.errors import LlmpruneError

DATA_DIR_ENV = "LLMPRUNE_DATA_DIR"


@dataclass(frozen=True)
class Source:
    name: str
    files: dict[str, str]  # split -> path relative to $LLMPRUNE_DATA_DIR
    hub: Callable[[str], str] | None  # split -> text, through `datasets`
    reader: Callable[[Path], str]  # local file -> text, in the same form the hub path gives


def _read_wikitext(path: Path) -> str:
    # HF `wikitext-2-raw-v1` yields each line with its "\n", or "" for a whitespace-only line;
    # the LLM-Pruner / Wanda protocol joins those rows with "\n\n".
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    rows = ["" if not line.strip() else line for line in lines]
    return "\n\n".join(rows)


def _hub_wikitext(split: str) -> str:
    from datasets import load_dataset

    ds = load_dataset("wikitext", "wikitext-2-raw-v1", split={"valid": "validation"}.get(split, split))
    return "\n\n".join(ds["text"])


def _read_ptb(path: Path) -> str:
    # HF `ptb_text_only` strips each line into `sentence`; LLM-Pruner joins sentences with " ".
    lines = path.read_text(encoding="utf-8").splitlines()
    return " ".join(line.strip() for line in lines if line.strip())


def _hub_ptb(split: str) -> str:
    from datasets import load_dataset

    ds = load_dataset("ptb_text_only", "penn_treebank", split={"valid": "validation"}.get(split, split))
    return " ".join(ds["sentence"])


def _read_jsonl_text(path: Path) -> str:
    texts = []
    for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            texts.append(json.loads(line)["text"])
        except (json.JSONDecodeError, KeyError, TypeError) as e:
            raise LlmpruneError(f"{path}:{i}: expected a JSON object with a 'text' field ({e})") from e
    return "\n\n".join(texts)


def _hub_c4(split: str) -> str:
    from datasets import load_dataset

    ds = load_dataset(
        "allenai/c4", data_files={"validation": "en/c4-validation.00000-of-00008.json.gz"}, split="validation"
    )
    return "\n\n".join(ds.select(range(2000))["text"])


def _read_alpaca_as_text(path: Path) -> str:
    from llmprune.data.instructions import format_alpaca, read_instructions

    return "\n\n".join(format_alpaca(r) + r["output"] for r in read_instructions(path))


def _hub_alpaca(split: str) -> str:
    from datasets import load_dataset

    from llmprune.data.instructions import format_alpaca

    ds = load_dataset("yahma/alpaca-cleaned", split="train")
    return "\n\n".join(format_alpaca(r) + r["output"] for r in ds)


SOURCES: dict[str, Source] = {
    "wikitext2": Source(
        "wikitext2", {"test": "wikitext2/test.txt", "valid": "wikitext2/valid.txt"}, _hub_wikitext, _read_wikitext
    ),
    "ptb": Source("ptb", {"test": "ptb/test.txt", "valid": "ptb/valid.txt"}, _hub_ptb, _read_ptb),
    "c4": Source("c4", {"train": "calib/c4_sample_200.jsonl"}, _hub_c4, _read_jsonl_text),
    "alpaca": Source("alpaca", {"train": "alpaca/alpaca_cleaned.json"}, _hub_alpaca, _read_alpaca_as_text),
}

DEFAULT_SPLIT = {"wikitext2": "test", "ptb": "test", "c4": "train", "alpaca": "train"}


def data_dir() -> Path | None:
    env = os.environ.get(DATA_DIR_ENV)
    return Path(env).expanduser() if env else None


def resolve_file(relative: str, *, path: str | Path | None = None) -> tuple[Path | None, list[str]]:
    """Find a local data file: explicit path first, then $LLMPRUNE_DATA_DIR. Returns (file, tried)."""
    tried: list[str] = []
    if path is not None:
        p = Path(path).expanduser()
        if p.is_file():
            return p, tried
        tried.append(str(p))
        raise LlmpruneError(f"data file not found: {p}; pass an existing file")
    root = data_dir()
    if root is not None:
        p = root / relative
        if p.is_file():
            return p, tried
        tried.append(str(p))
    else:
        tried.append(f"${DATA_DIR_ENV}/{relative} (${DATA_DIR_ENV} is not set)")
    return None, tried


def read_user_file(name: str) -> str:
    """The text of a data file the user named instead of a source (plain text, or .jsonl with a `text` field)."""
    p = Path(name).expanduser()
    if not p.exists():
        if "/" in name or "." in name:
            raise LlmpruneError(f"data file not found: {p}; pass an existing file or one of {', '.join(SOURCES)}")
        raise LlmpruneError(f"unknown data source {name!r}; choose one of {', '.join(SOURCES)} or a file path")
    if not p.is_file():
        raise LlmpruneError(f"{p} is a folder, not a data file; pass a text or .jsonl file")
    try:
        text = _read_jsonl_text(p) if p.suffix == ".jsonl" else p.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise LlmpruneError(
            f"{p} is not UTF-8 text (byte {e.start}: {e.reason}); pass a plain-text or .jsonl file"
        ) from e
    except OSError as e:
        raise LlmpruneError(f"cannot read {p}: {e.strerror}") from e
    if not text.strip():
        raise LlmpruneError(f"{p} holds no text; pass a file with text to calibrate or evaluate on")
    return text


def load_text(name: str, split: str | None = None, *, path: str | Path | None = None) -> str:
    """Return the raw text of source `name` (wikitext2, ptb, c4, alpaca) or of a file given by path."""
    if path is not None and name not in SOURCES:
        name = "wikitext2"
    if name not in SOURCES:
        return read_user_file(name)
    src = SOURCES[name]
    split = split or DEFAULT_SPLIT[name]
    if split not in src.files:
        raise LlmpruneError(f"source {name!r} has no split {split!r}; available: {', '.join(src.files)}")
    file, tried = resolve_file(src.files[split], path=path)
    if file is not None:
        return src.reader(file)
    hub_error = hub.unavailable()
    if src.hub is not None and hub_error is None:
        try:
            return src.hub(split)
        except Exception as e:  # datasets raises many types (ConnectionError, DatasetNotFoundError, ...)
            hub_error = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
    tried.append(f"Hugging Face Hub ({hub_error})")
    raise LlmpruneError(
        f"no data found for {name}/{split}. Tried: " + "; ".join(tried) + ". "
        f"Set {DATA_DIR_ENV} to a folder containing {src.files[split]}, or pass the file path explicitly."
    )
