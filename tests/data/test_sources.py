"""Data resolution order: explicit path, then $LLMPRUNE_DATA_DIR, then the Hub; one clear error."""

from __future__ import annotations

import json

import pytest

from llmprune.data import calibration_batches, load_text
from llmprune.errors import LlmpruneError


def test_wikitext_rows_rebuilt_like_hf(tmp_path):
    f = tmp_path / "test.txt"
    f.write_text(" \n = Title = \n \n Some text .\n")
    assert load_text("wikitext2", path=f) == "\n\n = Title = \n" + "\n\n" + "\n\n" + " Some text .\n"


def test_explicit_path_beats_data_dir(tmp_path, monkeypatch):
    (tmp_path / "dd" / "wikitext2").mkdir(parents=True)
    (tmp_path / "dd" / "wikitext2" / "test.txt").write_text(" from data dir\n")
    (tmp_path / "mine.txt").write_text(" explicit\n")
    monkeypatch.setenv("LLMPRUNE_DATA_DIR", str(tmp_path / "dd"))
    assert load_text("wikitext2") == " from data dir\n"
    assert load_text("wikitext2", path=tmp_path / "mine.txt") == " explicit\n"


def test_ptb_joined_with_spaces(tmp_path, monkeypatch):
    (tmp_path / "ptb").mkdir()
    (tmp_path / "ptb" / "test.txt").write_text(" a b <unk> \n c d \n")
    monkeypatch.setenv("LLMPRUNE_DATA_DIR", str(tmp_path))
    assert load_text("ptb") == "a b <unk> c d"


def test_missing_data_lists_every_place_tried(tmp_path, monkeypatch):
    monkeypatch.setenv("LLMPRUNE_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    with pytest.raises(LlmpruneError) as e:
        load_text("ptb")
    msg = str(e.value)
    assert str(tmp_path / "ptb" / "test.txt") in msg
    assert "Hugging Face Hub" in msg and "LLMPRUNE_DATA_DIR" in msg


def test_missing_explicit_path(tmp_path):
    with pytest.raises(LlmpruneError, match="data file not found"):
        load_text("wikitext2", path=tmp_path / "nope.txt")


def test_unknown_source():
    with pytest.raises(LlmpruneError, match="unknown data source 'bookcorpus9'"):
        load_text("bookcorpus9")


def test_c4_jsonl_and_malformed_line(tmp_path):
    f = tmp_path / "c4.jsonl"
    f.write_text(json.dumps({"text": "hello"}) + "\n" + json.dumps({"text": "world"}) + "\n")
    assert load_text("c4", path=f) == "hello\n\nworld"
    f.write_text(json.dumps({"text": "ok"}) + "\nnot json\n")
    with pytest.raises(LlmpruneError, match=r"c4.jsonl:2"):
        load_text("c4", path=f)


class _CharTok:
    def __call__(self, text, add_special_tokens=False, return_attention_mask=False):
        return {"input_ids": [ord(c) % 97 for c in text]}


def test_calibration_is_seeded_and_shaped(tmp_path, monkeypatch):
    (tmp_path / "wikitext2").mkdir()
    (tmp_path / "wikitext2" / "valid.txt").write_text(" abcdefghijklmnopqrstuvwxyz\n" * 20)
    monkeypatch.setenv("LLMPRUNE_DATA_DIR", str(tmp_path))
    a = calibration_batches(_CharTok(), "wikitext2", samples=5, seq_len=16, seed=3)
    b = calibration_batches(_CharTok(), "wikitext2", samples=5, seq_len=16, seed=3)
    c = calibration_batches(_CharTok(), "wikitext2", samples=5, seq_len=16, seed=4)
    assert a.shape == (5, 16) and a.equal(b) and not a.equal(c)
    with pytest.raises(LlmpruneError, match="seq_len"):
        calibration_batches(_CharTok(), "wikitext2", samples=5, seq_len=1)


def test_shared_data_wikitext_when_available():
    import os

    if not os.environ.get("LLMPRUNE_DATA_DIR"):
        pytest.skip("no LLMPRUNE_DATA_DIR")
    text = load_text("wikitext2", "test")
    assert text.startswith("\n\n = Robert Boulter = \n")
