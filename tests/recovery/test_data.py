"""Recovery data: Alpaca template and masking, packing without cross-talk or waste, splits, bad files."""

from __future__ import annotations

import json

import pytest
import torch

from llmprune.errors import LlmpruneError
from llmprune.recovery.config import RecoveryConfig, recovery_config
from llmprune.recovery.data import IGNORE, Example, alpaca_examples, build_datasets, load_source, pack
from tests.tiny import tiny_model, word_tokenizer


def test_pack_keeps_every_token_once_and_restarts_positions():
    g = torch.Generator().manual_seed(0)
    examples = []
    for i in range(30):
        n = int(torch.randint(3, 40, (1,), generator=g))
        ids = (torch.arange(n) + 1000 * i).tolist()
        examples.append(Example(ids, list(ids)))
    rows = pack(examples, 64, pad_id=-1)
    assert rows.examples == 30
    real = rows.input_ids[rows.input_ids >= 0]
    assert sorted(real.tolist()) == sorted(t for ex in examples for t in ex.ids)
    assert rows.fill > 0.85  # first-fit-decreasing wastes little
    assert rows.fill == pytest.approx(sum(len(e.ids) for e in examples) / rows.input_ids.numel())
    for r in range(len(rows)):
        pos, ids = rows.position_ids[r], rows.input_ids[r]
        starts = (pos == 0).nonzero().flatten().tolist()
        for s in starts:  # each segment: positions 0.. and one example's ids in order (or padding)
            assert rows.labels[r, s] == IGNORE
            ex_id = int(ids[s]) // 1000 if ids[s] >= 0 else None
            if ex_id is not None:
                n = len(examples[ex_id].ids)
                assert ids[s : s + n].tolist() == examples[ex_id].ids
                assert pos[s : s + n].tolist() == list(range(n))
    assert rows.targets(slice(None)) == sum(len(e.ids) - 1 for e in examples)


def test_packed_rows_give_the_same_logits_as_separate_examples():
    model = tiny_model("llama", heads=4, kv_heads=2, attn_implementation="sdpa")
    examples = [Example(list(range(5 + k, 5 + k + n)), [0] * n) for k, n in enumerate((7, 11, 5, 9))]
    rows = pack(examples, 40, pad_id=0)
    assert len(rows) == 1 and int(rows.lengths[0]) == 32
    with torch.no_grad():
        packed = model(input_ids=rows.input_ids, position_ids=rows.position_ids, use_cache=False).logits[0]
        t = 0
        for ex in examples:  # one row: members in their original order
            alone = model(input_ids=torch.tensor([ex.ids])).logits[0]
            torch.testing.assert_close(packed[t : t + len(ex.ids)], alone, atol=1e-5, rtol=0)
            t += len(ex.ids)


def test_alpaca_template_and_prompt_masking():
    tok = word_tokenizer(128)
    rec = [{"instruction": "t5 t6", "input": "t7", "output": "t8 t9 t7"}]
    full = alpaca_examples(rec, tok, RecoveryConfig(cutoff=256))[0]
    masked = alpaca_examples(rec, tok, RecoveryConfig(cutoff=256, train_on_inputs=False))[0]
    assert full.ids == masked.ids and full.labels == full.ids
    assert full.ids[-4:] == [8, 9, 7, tok.eos_token_id]  # response then EOS
    assert "t5" in tok.decode(full.ids) and "t7" in tok.decode(full.ids)
    n_prompt = sum(1 for x in masked.labels if x == IGNORE)
    assert masked.labels[n_prompt:] == [8, 9, 7, tok.eos_token_id] and n_prompt == len(full.ids) - 4
    short = alpaca_examples(rec, tok, RecoveryConfig(cutoff=8))[0]
    assert len(short.ids) == 8  # truncated to the cutoff


def test_validation_split_is_seeded_and_disjoint(alpaca_file):
    tok = word_tokenizer(128)
    cfg = RecoveryConfig(data=str(alpaca_file), cutoff=64, val_size=8)
    train, val, info = build_datasets(tok, cfg)
    train2, val2, _ = build_datasets(tok, cfg)
    assert torch.equal(train.input_ids, train2.input_ids) and torch.equal(val.input_ids, val2.input_ids)
    assert info["examples"] == 40 and info["val_examples"] == 8 and val.examples == 8
    other, _, _ = build_datasets(tok, cfg.model_copy(update={"seed": 1}))
    assert not torch.equal(other.input_ids, train.input_ids)


def test_plain_text_rows_are_full(text_file):
    train, val, info = build_datasets(word_tokenizer(128), RecoveryConfig(data=str(text_file), cutoff=32))
    assert info["kind"] == "text" and val is None
    n = len(word_tokenizer(128)(text_file.read_text(), add_special_tokens=False)["input_ids"])
    assert train.fill == 1.0 and train.input_ids.shape[1] == 32 and len(train) == n // 32 > 10


@pytest.mark.parametrize(
    ("content", "name", "message"),
    [
        (None, "missing.json", "training data not found"),
        ('[{"instruction": 1,', "broken.json", "not valid JSON"),
        ('[{"instruction": "a"}]', "nooutput.json", "lacks 'instruction' or 'output'"),
        ('{"instruction": "a", "output": "b"}', "object.json", "expected a JSON array"),
        ("", "empty.jsonl", "is empty"),
        ("   \n", "blank.txt", "holds no text"),
        ('{"text": "a"}\n{"oops": 1}\n', "bad.jsonl", "expected a JSON object with a 'text' field"),
    ],
)
def test_bad_data_files(tmp_path, content, name, message):
    path = tmp_path / name
    if content is not None:
        path.write_text(content)
    with pytest.raises(LlmpruneError, match=message):
        load_source(str(path))


def test_too_little_data_and_bad_config(tmp_path, text_file):
    tok = word_tokenizer(128)
    with pytest.raises(LlmpruneError, match="fewer than one row"):
        build_datasets(tok, RecoveryConfig(data=str(text_file), cutoff=4096))
    path = tmp_path / "few.json"
    path.write_text(json.dumps([{"instruction": "t3", "output": "t4"}] * 3))
    with pytest.raises(LlmpruneError, match="leaves no training examples"):
        build_datasets(tok, RecoveryConfig(data=str(path), val_size=3))
    with pytest.raises(LlmpruneError, match=r"recovery\.lora_r"):
        recovery_config({"lora_r": 0})
    with pytest.raises(LlmpruneError, match=r"recovery\.lora_rank: Extra inputs"):
        recovery_config({"lora_rank": 8})
    with pytest.raises(LlmpruneError, match="multiple of micro_batch_size"):
        recovery_config({"batch_size": 6, "micro_batch_size": 4})
