"""Calibration batches: N seeded samples of L tokens from a named source."""

from __future__ import annotations

import torch

from llmprune.data.sources import load_text
from llmprune.errors import LlmpruneError


def tokenize_text(tokenizer, text: str) -> torch.Tensor:
    """Tokenize a whole corpus once; returns a 1-D LongTensor (no special tokens added)."""
    ids = tokenizer(text, add_special_tokens=False, return_attention_mask=False)["input_ids"]
    return torch.tensor(ids, dtype=torch.long)


def calibration_batches(
    tokenizer,
    source: str = "wikitext2",
    *,
    samples: int = 10,
    seq_len: int = 64,
    seed: int = 0,
    split: str | None = None,
) -> torch.Tensor:
    """Return a (samples, seq_len) LongTensor of random windows of the source text (seeded)."""
    if samples < 1:
        raise LlmpruneError(f"samples must be >= 1, got {samples}")
    if seq_len < 2:
        raise LlmpruneError(f"seq_len must be >= 2, got {seq_len}")
    if split is None and source == "wikitext2":
        split = "valid"  # never calibrate on the split that perplexity is measured on
    ids = tokenize_text(tokenizer, load_text(source, split))
    if ids.numel() <= seq_len:
        raise LlmpruneError(f"calibration source {source!r} has {ids.numel()} tokens, fewer than seq_len={seq_len}")
    g = torch.Generator().manual_seed(seed)
    starts = torch.randint(0, ids.numel() - seq_len, (samples,), generator=g)
    return torch.stack([ids[s : s + seq_len] for s in starts.tolist()])
