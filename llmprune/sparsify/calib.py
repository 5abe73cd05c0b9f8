"""Calibration windows for Wanda, sampled the way the reference implementation samples C4.

locuslab/wanda `get_c4`: with Python's `random` seeded, repeatedly pick a random document until its
tokenized length exceeds L, then take a random window of L tokens inside it; N times. For document
sources (`c4` and `.jsonl` files) we do exactly that, with the same sequence of random calls; other
sources (wikitext2, ptb, alpaca, text files) fall back to `llmprune.data.calibration_batches`
(random windows of the whole concatenated text).
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import torch

from llmprune.data.calib import calibration_batches
from llmprune.data.config import CalibConfig
from llmprune.data.sources import SOURCES, load_text, resolve_file
from llmprune.errors import LlmpruneError


def read_documents(source: str) -> list[str] | None:
    """The documents of a document source (c4 or a .jsonl file of {"text": ...}); None for plain-text sources."""
    path: Path | None = None
    if source == "c4":
        path, _ = resolve_file(SOURCES["c4"].files["train"])
        if path is None:  # not stored locally: load_text tries the Hub and raises the standard error
            return load_text("c4").split("\n\n")
    elif source not in SOURCES and source.endswith(".jsonl") and Path(source).expanduser().is_file():
        path = Path(source).expanduser()
    if path is None:
        return None
    docs = []
    for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if line.strip():
            try:
                docs.append(json.loads(line)["text"])
            except (json.JSONDecodeError, KeyError, TypeError) as e:
                raise LlmpruneError(f"{path}:{i}: expected a JSON object with a 'text' field ({e})") from e
    if not docs:
        raise LlmpruneError(f"{path} holds no documents; pass a .jsonl file with one {{'text': ...}} per line")
    return docs


def document_windows(tokenizer, docs: list[str], *, samples: int, seq_len: int, seed: int) -> torch.Tensor:
    """(samples, seq_len) windows, each inside one random document longer than seq_len tokens (seeded)."""
    rng = random.Random(seed)
    cache: dict[int, list[int]] = {}

    def ids(i: int) -> list[int]:
        if i not in cache:
            cache[i] = tokenizer(docs[i])["input_ids"]
        return cache[i]

    long_enough = None
    out = []
    for _ in range(samples):
        while True:
            i = rng.randint(0, len(docs) - 1)
            if len(ids(i)) > seq_len:
                break
            if long_enough is None and len(cache) == len(docs):  # every document seen: is any long enough?
                long_enough = any(len(v) > seq_len for v in cache.values())
                if not long_enough:
                    raise LlmpruneError(
                        f"no calibration document is longer than --seq-len {seq_len} tokens "
                        f"(longest: {max(len(v) for v in cache.values())}); use a smaller --seq-len"
                    )
        start = rng.randint(0, len(ids(i)) - seq_len - 1)
        out.append(torch.tensor(ids(i)[start : start + seq_len], dtype=torch.long))
    return torch.stack(out)


def calibration_windows(tokenizer, calib: CalibConfig) -> torch.Tensor:
    """The (samples, seq_len) LongTensor of calibration token windows that `calib` describes."""
    docs = read_documents(calib.source)
    if docs is None:
        return calibration_batches(
            tokenizer, calib.source, samples=calib.samples, seq_len=calib.seq_len, seed=calib.seed
        )
    return document_windows(tokenizer, docs, samples=calib.samples, seq_len=calib.seq_len, seed=calib.seed)
