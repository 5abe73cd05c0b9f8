"""Perplexity with the LLM-Pruner / Wanda protocol.

The corpus is tokenized once, cut into non-overlapping windows of `seq_len` tokens (the tail that
does not fill a window is dropped), each window is scored alone, and
PPL = exp(mean NLL over every predicted token).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from llmprune.errors import LlmpruneError
from llmprune.eval.config import BATCH_SIZE, SEQ_LEN
from llmprune.models.halfcpu import fp32_compute


def perplexity_windows(ids: torch.Tensor, seq_len: int, max_windows: int | None = None) -> torch.Tensor:
    """Cut a 1-D token tensor into (W, seq_len) non-overlapping windows."""
    if seq_len <= 1:
        raise LlmpruneError(f"--seq-len must be > 1 (got {seq_len}): a window needs at least one predicted token")
    if max_windows is not None and max_windows < 1:
        raise LlmpruneError(f"--max-windows must be >= 1 (got {max_windows})")
    n = ids.numel() // seq_len
    if n == 0:
        raise LlmpruneError(f"the text has {ids.numel()} tokens, fewer than one window of {seq_len}")
    if max_windows is not None:
        n = min(n, max_windows)
    return ids[: n * seq_len].view(n, seq_len)


@torch.no_grad()
def window_nll(model, windows: torch.Tensor, *, batch_size: int = BATCH_SIZE, progress: bool = True) -> torch.Tensor:
    """Summed NLL (fp32) of each window's predicted tokens; returns a (W,) tensor."""
    if batch_size < 1:
        raise LlmpruneError(f"--batch-size must be >= 1 (got {batch_size})")
    device = next(model.parameters()).device
    out = []
    bar = tqdm(total=windows.shape[0], desc="perplexity", unit="win", disable=not progress, leave=False)
    with fp32_compute(model):
        for i in range(0, windows.shape[0], batch_size):
            batch = windows[i : i + batch_size].to(device)
            logits = model(input_ids=batch, use_cache=False).logits[:, :-1].float()
            nll = F.cross_entropy(logits.transpose(1, 2), batch[:, 1:], reduction="none").sum(dim=1)
            out.append(nll.cpu())
            bar.update(batch.shape[0])
    bar.close()
    return torch.cat(out)


def perplexity(
    model,
    tokenizer,
    text: str,
    *,
    seq_len: int = SEQ_LEN,
    max_windows: int | None = None,
    batch_size: int = BATCH_SIZE,
    progress: bool = True,
) -> tuple[float, int]:
    """Perplexity of `model` on `text`; returns (ppl, number of windows). With a tokenizer that adds BOS by
    default, each window is BOS + `seq_len` - 1 tokens of text (`llmprune.data.calib`): `seq_len` - 1
    predicted tokens per window either way."""
    from llmprune.data.calib import bos_id, tokenize_text, with_bos

    if seq_len <= 1:
        raise LlmpruneError(f"--seq-len must be > 1 (got {seq_len}): a window needs at least one predicted token")
    bos = bos_id(tokenizer)
    if bos is not None and seq_len < 3:
        raise LlmpruneError(f"--seq-len must be > 2 for a tokenizer that adds BOS (got {seq_len}): BOS + text")
    windows = with_bos(
        perplexity_windows(tokenize_text(tokenizer, text), seq_len - (bos is not None), max_windows), bos
    )
    nll = window_nll(model, windows, batch_size=batch_size, progress=progress)
    mean = nll.sum().item() / (windows.shape[0] * (seq_len - 1))
    return math.exp(mean), windows.shape[0]
