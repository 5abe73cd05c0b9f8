"""Reference-style calibration windows: a random window inside a random document longer than L tokens."""

from __future__ import annotations

import json

import pytest
import torch

from llmprune.errors import LlmpruneError
from llmprune.sparsify.calib import calibration_windows, document_windows, read_documents
from llmprune.sparsify.config import wanda_calib
from tests.tiny import word_tokenizer


def _docs():
    # documents of 5, 40, 12 and 60 words
    lens, start, docs = [5, 40, 12, 60], 2, []
    for n in lens:
        docs.append(" ".join(f"t{(start + j) % 128}" for j in range(n)))
        start += n
    return docs


def test_windows_lie_inside_one_long_enough_document():
    tok, docs = word_tokenizer(), _docs()
    w = document_windows(tok, docs, samples=20, seq_len=16, seed=0)
    assert w.shape == (20, 16)
    ids = [tok(d)["input_ids"] for d in docs]
    long_docs = [d for d in ids if len(d) > 16]
    assert 0 < len(long_docs) < len(docs)
    for row in w.tolist():  # each window is a contiguous slice of one document longer than 16 tokens
        assert any(row == d[s : s + 16] for d in long_docs for s in range(len(d) - 15))


def test_seeded_and_reproducible():
    tok, docs = word_tokenizer(), _docs()
    a = document_windows(tok, docs, samples=8, seq_len=16, seed=1)
    assert torch.equal(a, document_windows(tok, docs, samples=8, seq_len=16, seed=1))
    assert not torch.equal(a, document_windows(tok, docs, samples=8, seq_len=16, seed=2))


def test_no_document_long_enough():
    with pytest.raises(LlmpruneError, match="no calibration document is longer than --seq-len 100"):
        document_windows(word_tokenizer(), _docs(), samples=2, seq_len=100, seed=0)


def test_jsonl_file_source_and_plain_text_fallback(tmp_path, tiny_text_data):
    path = tmp_path / "docs.jsonl"
    path.write_text("".join(json.dumps({"text": d}) + "\n" for d in _docs()))
    assert read_documents(str(path)) == _docs()
    w = calibration_windows(word_tokenizer(), wanda_calib(source=str(path), samples=3, seq_len=16))
    assert w.shape == (3, 16)
    assert read_documents("wikitext2") is None  # plain text: windows of the concatenated valid split
    assert calibration_windows(word_tokenizer(), wanda_calib(source="wikitext2", samples=4, seq_len=32)).shape == (
        4,
        32,
    )


def test_bad_jsonl(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"content": "x"}\n')
    with pytest.raises(LlmpruneError, match="expected a JSON object with a 'text' field"):
        read_documents(str(path))
