"""Alpaca-style instruction data (instruction / input / output) and its prompt template."""

from __future__ import annotations

import json
from pathlib import Path

from llmprune.errors import LlmpruneError

PROMPT_WITH_INPUT = (
    "Below is an instruction that describes a task, paired with an input that provides further context. "
    "Write a response that appropriately completes the request.\n\n"
    "### Instruction:\n{instruction}\n\n### Input:\n{input}\n\n### Response:\n"
)
PROMPT_NO_INPUT = (
    "Below is an instruction that describes a task. "
    "Write a response that appropriately completes the request.\n\n"
    "### Instruction:\n{instruction}\n\n### Response:\n"
)


def format_alpaca(record: dict) -> str:
    """The Alpaca / LLM-Pruner prompt (without the response)."""
    if record.get("input"):
        return PROMPT_WITH_INPUT.format(instruction=record["instruction"], input=record["input"])
    return PROMPT_NO_INPUT.format(instruction=record["instruction"])


def read_instructions(path: str | Path) -> list[dict]:
    """Read an Alpaca json array (or jsonl) of {instruction, input, output} records, validated."""
    path = Path(path)
    if not path.is_file():
        raise LlmpruneError(f"instruction data file not found: {path}")
    text = path.read_text(encoding="utf-8")
    try:
        if path.suffix == ".jsonl":
            records = [json.loads(line) for line in text.splitlines() if line.strip()]
        else:
            records = json.loads(text)
    except json.JSONDecodeError as e:
        raise LlmpruneError(f"{path} is not valid JSON (line {e.lineno}: {e.msg})") from e
    if not isinstance(records, list):
        raise LlmpruneError(f"{path}: expected a JSON array of records with instruction/input/output")
    for i, r in enumerate(records):
        if not isinstance(r, dict) or "instruction" not in r or "output" not in r:
            raise LlmpruneError(f"{path}: record {i} lacks 'instruction' or 'output' (Alpaca format expected)")
        r.setdefault("input", "")
    return records
