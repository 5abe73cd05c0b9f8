"""Token windows of a corpus: calibration batches, and the BOS rule every window follows.

A tokenizer that puts a BOS token in front of a text by default (Gemma's, Llama 2's) gets one in front of
every window too, as the model always saw one at position 0 in training; the window then holds BOS and
L - 1 tokens of text. Tokenizers without a default BOS (SmolLM2's, Qwen2's) get windows of text only.
"""

from __future__ import annotations

import torch

from llmprune.data.sources import load_text
from llmprune.errors import LlmpruneError


def tokenize_text(tokenizer, text: str) -> torch.Tensor:
    """Tokenize a whole corpus once; returns a 1-D LongTensor (no special tokens added)."""
    ids = tokenizer(text, add_special_tokens=False, return_attention_mask=False)["input_ids"]
    return torch.tensor(ids, dtype=torch.long)


def bos_id(tokenizer) -> int | None:
    """The BOS token id when `tokenizer` adds one in front of a text by default, else None."""
    bos = getattr(tokenizer, "bos_token_id", None)
    if bos is None:
        return None
    ids = tokenizer("a")["input_ids"]
    return bos if ids and ids[0] == bos else None


def with_bos(windows: torch.Tensor, bos: int | None) -> torch.Tensor:
    """`windows` (N, L) with a BOS column in front when `bos` is given: (N, L + 1)."""
    if bos is None:
        return windows
    return torch.cat([torch.full((windows.shape[0], 1), bos, dtype=windows.dtype), windows], dim=1)


def calibration_text(source: str, split: str | None = None) -> str:
    """The text calibration windows are drawn from (WikiText-2: its validation split, never the test split
    that perplexity is measured on)."""
    if split is None and source == "wikitext2":
        split = "valid"
    return load_text(source, split)


def calibration_batches(
    tokenizer,
    source: str = "wikitext2",
    *,
    samples: int = 10,
    seq_len: int = 64,
    seed: int = 0,
    split: str | None = None,
) -> torch.Tensor:
    """Return a (samples, seq_len) LongTensor of random windows of the source text (seeded), each starting
    with BOS when the tokenizer adds one by default (see the module doc)."""
    if samples < 1:
        raise LlmpruneError(f"samples must be >= 1, got {samples}")
    if seq_len < 2:
        raise LlmpruneError(f"seq_len must be >= 2, got {seq_len}")
    bos = bos_id(tokenizer)
    length = seq_len - (bos is not None)
    ids = tokenize_text(tokenizer, calibration_text(source, split))
    if ids.numel() <= length:
        raise LlmpruneError(f"calibration source {source!r} has {ids.numel()} tokens, fewer than seq_len={seq_len}")
    g = torch.Generator().manual_seed(seed)
    starts = torch.randint(0, ids.numel() - length, (samples,), generator=g)
    return with_bos(torch.stack([ids[s : s + length] for s in starts.tolist()]), bos)
