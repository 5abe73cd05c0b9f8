"""Windows start with BOS exactly when the tokenizer adds one by default (Gemma), and never otherwise."""

from __future__ import annotations

import math

import pytest
import torch

from llmprune.data.calib import bos_id, calibration_batches, with_bos
from tests.tiny import tiny_model, word_tokenizer


def _tokenizers():
    from tokenizers import processors

    plain = word_tokenizer()
    bos = word_tokenizer()
    bos.bos_token = "t3"
    bos._tokenizer.post_processor = processors.TemplateProcessing(single="t3 $A", special_tokens=[("t3", 3)])
    return plain, bos


def test_bos_is_read_from_the_tokenizer_s_default():
    plain, bos = _tokenizers()
    assert bos("t5 t6")["input_ids"] == [3, 5, 6] and bos_id(bos) == 3
    assert bos_id(plain) is None
    plain.bos_token = "t3"  # a BOS token the tokenizer does not add: no BOS in windows either
    assert bos_id(plain) is None
    assert with_bos(torch.tensor([[5, 6]]), 3).tolist() == [[3, 5, 6]] and with_bos(
        torch.tensor([[5]]), None
    ).shape == (1, 1)


def test_calibration_and_perplexity_windows(tiny_text_data):
    from llmprune.eval.ppl import perplexity

    plain, bos = _tokenizers()
    a = calibration_batches(plain, samples=4, seq_len=16, seed=0)
    b = calibration_batches(bos, samples=4, seq_len=16, seed=0)
    assert a.shape == b.shape == (4, 16) and (b[:, 0] == 3).all() and not (a[:, 0] == 3).all()
    text = (tiny_text_data / "wikitext2" / "test.txt").read_text()
    model = tiny_model("llama")
    ppl_plain, n_plain = perplexity(model, plain, text, seq_len=16, max_windows=5, progress=False)
    ppl_bos, n_bos = perplexity(model, bos, text, seq_len=16, max_windows=5, progress=False)
    assert n_plain == n_bos == 5 and math.isfinite(ppl_plain) and ppl_bos != ppl_plain
    with pytest.raises(Exception, match="seq-len must be > 2"):
        perplexity(model, bos, text, seq_len=2, progress=False)


def test_training_rows_start_with_bos():
    from llmprune.recovery.config import RecoveryConfig
    from llmprune.recovery.data import text_examples

    plain, bos = _tokenizers()
    text = " ".join(f"t{5 + i % 4}" for i in range(100))
    cfg = RecoveryConfig(cutoff=10)
    rows = text_examples(text, bos, cfg)
    assert len(rows) == 100 // 9 and all(r.ids[0] == 3 and len(r.ids) == 10 for r in rows)
    assert rows[0].ids[1:] == [5, 6, 7, 8, 5, 6, 7, 8, 5]
    assert [r.ids for r in text_examples(text, plain, cfg)][0] == [5, 6, 7, 8, 5, 6, 7, 8, 5, 6]
