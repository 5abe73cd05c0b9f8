"""One timed greedy `generate`: the workload that bench times and the memory probe runs.

- the prompt is random token ids (fixed seed, the same for every model measured together);
- `min_new_tokens = max_new_tokens = new_tokens`, so no sequence stops early at an end-of-text token;
- a logits processor records the time of each generation step: the first call comes right after the
  prefill forward, the last after the final decode forward. Prefill latency = start -> first call;
  decode tokens/s = batch * (new_tokens - 1) / (first call -> last call).
"""

from __future__ import annotations

import time

import torch

from llmprune.errors import LlmpruneError


def prompt_ids(vocab: int, batch: int, length: int, device: torch.device, seed: int = 0) -> torch.Tensor:
    """`batch` x `length` token ids drawn uniformly from [0, vocab) with a fixed seed."""
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, vocab, (batch, length), generator=g).to(device)


class _StepClock:
    """A logits processor that only records when each generation step's logits are ready."""

    def __init__(self, device: torch.device):
        self.device = device
        self.times: list[float] = []

    def __call__(self, input_ids, scores):
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        self.times.append(time.perf_counter())
        return scores


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@torch.no_grad()
def timed_generate(model, ids: torch.Tensor, new_tokens: int) -> tuple[float, float]:
    """(prefill seconds, decode tokens/s) of one greedy generate of exactly `new_tokens` tokens."""
    from transformers import LogitsProcessorList

    clock = _StepClock(ids.device)
    pad = model.config.pad_token_id
    if pad is None:
        eos = model.config.eos_token_id
        pad = (eos[0] if isinstance(eos, list) else eos) if eos is not None else 0
    _sync(ids.device)
    t0 = time.perf_counter()
    out = model.generate(
        input_ids=ids,
        attention_mask=torch.ones_like(ids),
        do_sample=False,
        max_new_tokens=new_tokens,
        min_new_tokens=new_tokens,
        use_cache=True,
        pad_token_id=pad,
        logits_processor=LogitsProcessorList([clock]),
    )
    if out.shape[1] != ids.shape[1] + new_tokens or len(clock.times) != new_tokens:
        raise LlmpruneError(f"generate produced {out.shape[1] - ids.shape[1]} tokens, expected {new_tokens}")
    decode_s = clock.times[-1] - clock.times[0]
    return clock.times[0] - t0, ids.shape[0] * (new_tokens - 1) / max(decode_s, 1e-9)
