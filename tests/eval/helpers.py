"""Helpers for the evaluation tests: a byte-level tokenizer and small task files."""

from __future__ import annotations

import json
from pathlib import Path

EOS = "<|endoftext|>"


def byte_tokenizer():
    """A byte-level tokenizer with no merges: 256 byte tokens + one end-of-text token (id 256)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {c: i for i, c in enumerate(sorted(pre_tokenizers.ByteLevel.alphabet()))}
    vocab[EOS] = len(vocab)
    t = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    t.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    t.decoder = decoders.ByteLevel()
    return PreTrainedTokenizerFast(tokenizer_object=t, eos_token=EOS, bos_token=EOS, pad_token=EOS)


def summed_logprob(model, tok, ctx: str, cont: str) -> float:
    """sum log p(continuation tokens | context) by hand: one forward over context + continuation."""
    import torch

    ids = torch.tensor([tok(ctx + cont).input_ids])
    n_ctx = len(tok(ctx).input_ids)
    with torch.no_grad():
        logp = torch.log_softmax(model(ids).logits[0].float(), -1)
    return sum(logp[t - 1, ids[0, t]].item() for t in range(n_ctx, ids.shape[1]))


def run_cli(argv: list[str]) -> int | None:
    """Run `llmprune ARGV` in-process; returns the exit code (None or 0 on success, 2 on a user error)."""
    import pytest

    from llmprune.cli.app import main

    with pytest.raises(SystemExit) as e:
        main(argv)
    return e.value.code


def write_jsonl(path: Path, rows: list) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows), encoding="utf-8")
    return path


CHOICE_ROWS = [
    {"id": "a", "context": "Question: what is red?\nAnswer:", "choices": [" blood", " grass", " the sky"], "label": 0},
    {"id": "b", "context": "The cat sat on the", "choices": [" mat", " moon"], "label": 0},
    {"id": "c", "context": "Is water wet?\nAnswer:", "choices": [" no", " yes"], "label": 1},
    {"id": "d", "context": "Numbers: 1 2 3", "choices": [" 4 5", " seven", " x", " 4"], "label": 3},
    {"id": "e", "context": "Café au", "choices": [" lait", " lait très chaud"], "label": 1},
    {"id": "f", "context": "Question: pick one\nAnswer:", "choices": ["  two spaces", " one space"], "label": 0},
]

CONTEXT_ROWS = [
    {
        "id": "w1",
        "contexts": ["The trophy did not fit in the suitcase", "The suitcase"],
        "continuation": " was too big.",
        "label": 0,
    },
    {
        "id": "w2",
        "contexts": ["Sam gave Tom a book because Sam", "Sam gave Tom a book because Tom"],
        "continuation": " was kind.",
        "label": 0,
    },
    {"id": "w3", "contexts": ["A", "The long context B", "C c"], "continuation": " ends here", "label": 2},
]


class FakeLM:
    """Answers lm-eval loglikelihood requests from a table, in request order."""

    def __init__(self, table):
        self.table = table
        self.seen = []

    def loglikelihood(self, instances, disable_tqdm=False):
        self.seen.extend(i.args for i in instances)
        return [(self.table[i.args], False) for i in instances]
