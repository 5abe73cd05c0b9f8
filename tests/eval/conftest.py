"""Fixtures for the evaluation tests: tiny models that share `byte_tokenizer`'s vocabulary, task files."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.eval.helpers import CHOICE_ROWS, CONTEXT_ROWS, byte_tokenizer, write_jsonl


@pytest.fixture
def byte_model(make_tiny):
    """Factory of tiny random models whose vocabulary matches `byte_tokenizer` (257 tokens)."""

    def make(family: str = "llama", seed: int = 0, **kw):
        kw.setdefault("max_position_embeddings", 512)
        return make_tiny(family, seed=seed, vocab_size=257, **kw)

    return make


@pytest.fixture
def byte_tok():
    return byte_tokenizer()


@pytest.fixture
def choice_task(tmp_path) -> Path:
    return write_jsonl(tmp_path / "toy_choices.jsonl", CHOICE_ROWS)


@pytest.fixture
def context_task(tmp_path) -> Path:
    return write_jsonl(tmp_path / "toy_contexts.jsonl", CONTEXT_ROWS)
