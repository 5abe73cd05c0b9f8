"""Shared-prefix scoring: lm-eval's log-likelihoods, with each example's context computed once.

lm-eval's HFLM runs every (context, continuation) request as its own sequence and computes the whole
vocabulary's logits at every position. A multiple-choice example repeats its context once per choice
(HellaSwag: 4 times, a BoolQ passage twice), so most of that work is the same context again.

Here lm-eval still decides the tokens — `lm_eval_encodings` runs HFLM's own `loglikelihood` encoding
(`_encode_pair`, empty-context handling, BOS rules) and captures the token lists just before its
forward passes — and each example's choices are packed behind one copy of their shared context:

    c1 .. cn | a1 .. a(k-1) | b1 .. b(m-1) | ...        (choices a = a1..ak, b = b1..bm)

with a tree attention mask (a choice token sees the context and the earlier tokens of its own choice)
and position ids that restart at n for every choice. Every scored token therefore gets the same
attention inputs and positions as in lm-eval's separate sequence; the first token of every choice is
predicted from the last context position. Logits are computed only where a token is scored
(`logits_to_keep`). Inputs longer than the model's window are left-truncated per request exactly as
lm-eval does and scored unshared.

On SmolLM2 this halves the tokens of the four standard tasks (4.57M -> 2.37M) and skips the
vocabulary projection on context tokens. Results equal lm-eval's up to float rounding (tested).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from llmprune.errors import LlmpruneError
from llmprune.eval.config import BATCH_SIZE


@dataclass(frozen=True)
class Packed:
    """One context and the continuations scored behind it, as one packed sequence."""

    tokens: tuple[int, ...]
    positions: tuple[int, ...]
    segments: tuple[int, ...]  # 0: context; j + 1: continuation j
    # (packed position whose logits predict, target token, request index)
    targets: tuple[tuple[int, int, int], ...]

    def __len__(self) -> int:
        return len(self.tokens)


def lm_eval_encodings(lm, requests: Sequence[tuple[str, str]]) -> list[tuple[list[int], list[int]]]:
    """(context tokens, continuation tokens) of each request, as lm-eval's `loglikelihood` encodes them.

    HFLM's `loglikelihood` is run with its forward-pass step (`_loglikelihood_tokens`) replaced by a
    recorder, so the tokens are lm-eval's own, whatever its version's encoding rules.
    """
    from llmprune.eval.harness import loglikelihoods

    captured: list = []

    def record(reqs, *args, **kwargs):
        captured.extend(reqs)
        return [(0.0, False)] * len(reqs)

    lm._loglikelihood_tokens = record  # an instance attribute shadows the method
    try:
        loglikelihoods(lm, requests, progress=False)
    finally:
        del lm._loglikelihood_tokens
    if len(captured) != len(requests):
        raise LlmpruneError(
            f"lm-eval encoded {len(captured)} of {len(requests)} requests; unsupported lm-eval version?"
        )
    return [(list(ctx), list(cont)) for _, ctx, cont in captured]


def pack(context: Sequence[int], continuations: Sequence[tuple[int, Sequence[int]]], max_length: int) -> list[Packed]:
    """Pack `continuations` ((request index, tokens) pairs) behind one `context`.

    Returns one `Packed` when everything fits lm-eval's window (`max_length` + 1 tokens per request);
    otherwise one per request, left-truncated as lm-eval's `(context + continuation)[-(max_length + 1):]`.
    """
    if not context:
        raise LlmpruneError("empty context tokens: lm-eval always conditions on at least one token")
    longest = max((len(c) for _, c in continuations), default=0)
    if len(context) + longest > max_length + 1:
        out = []
        for req, cont in continuations:
            whole = (list(context) + list(cont))[-(max_length + 1) :]
            if len(cont) >= len(whole):
                raise LlmpruneError(
                    f"a choice of {len(cont)} tokens does not fit the model's {max_length}-token window behind at "
                    f"least one context token; shorten the task's choices or use a model with a longer window"
                )
            out.extend(pack(whole[: len(whole) - len(cont)], [(req, cont)], max_length))
        return out
    n = len(context)
    tokens, positions, segments = list(context), list(range(n)), [0] * n
    targets = []
    for j, (req, cont) in enumerate(continuations):
        start = len(tokens)  # packed index of cont[0] (cont[-1] is never an input)
        for t, tok in enumerate(cont):
            targets.append((n - 1 if t == 0 else start + t - 1, int(tok), req))
        tokens.extend(cont[:-1])
        positions.extend(range(n, n + len(cont) - 1))
        segments.extend([j + 1] * (len(cont) - 1))
    return [Packed(tuple(tokens), tuple(positions), tuple(segments), tuple(targets))]


def pack_requests(
    encodings: Sequence[tuple[Sequence[int], Sequence[int]]], groups: Sequence[Sequence[int]], max_length: int
) -> list[Packed]:
    """Pack each group of request indices (one example's choices) by shared context tokens."""
    out = []
    for group in groups:
        by_context: dict[tuple[int, ...], list] = {}
        for i in group:
            ctx, cont = encodings[i]
            by_context.setdefault(tuple(ctx), []).append((i, cont))
        for ctx, conts in by_context.items():
            out.extend(pack(ctx, conts, max_length))
    return out


def tree_mask(batch: Sequence[Packed], length: int, device) -> torch.Tensor:
    """Boolean attention mask [B, 1, L, L]: True where query q may attend to key k.

    `score_batch` passes it to the model as an additive float mask (0 or the dtype's minimum), the form
    every attention implementation that takes a 4D mask (eager, sdpa) reads the same way.
    """
    seg = torch.full((len(batch), length), -1, dtype=torch.long)
    for b, p in enumerate(batch):
        seg[b, : len(p)] = torch.tensor(p.segments)
    idx = torch.arange(length)
    causal = idx[None, :] <= idx[:, None]  # [q, k]
    valid = seg >= 0
    same = (seg[:, None, :] == 0) | (seg[:, None, :] == seg[:, :, None])  # key is context or same choice
    mask = causal[None] & same & valid[:, None, :] & valid[:, :, None]
    mask |= torch.eye(length, dtype=torch.bool)[None] & ~valid[:, :, None]  # padding rows see themselves
    return mask[:, None].to(device)


@torch.no_grad()
def score_batch(model, batch: Sequence[Packed], n_requests: int, pad_id: int = 0) -> torch.Tensor:
    """Summed log-probabilities (float64, [n_requests], zero where not in `batch`) of one batch."""
    check_attention(model)
    device = next(model.parameters()).device
    length = max(len(p) for p in batch)
    ids = torch.full((len(batch), length), pad_id, dtype=torch.long)
    pos = torch.zeros((len(batch), length), dtype=torch.long)
    for b, p in enumerate(batch):
        ids[b, : len(p)] = torch.tensor(p.tokens)
        pos[b, : len(p)] = torch.tensor(p.positions)
    rows = torch.tensor([b for b, p in enumerate(batch) for _ in p.targets])
    at = torch.tensor([t[0] for p in batch for t in p.targets])
    tok = torch.tensor([t[1] for p in batch for t in p.targets])
    req = torch.tensor([t[2] for p in batch for t in p.targets])
    dtype = model.dtype  # the dtype the attention scores get (sdpa wants the mask in it)
    allowed = tree_mask(batch, length, device)
    additive = torch.zeros(allowed.shape, dtype=dtype, device=device).masked_fill_(~allowed, torch.finfo(dtype).min)
    inputs = {"input_ids": ids.to(device), "attention_mask": additive, "position_ids": pos.to(device)}
    if keeps_positions_per_row(model):  # logits exactly where a token is scored: [N, V]
        scored = torch.zeros((len(batch), length), dtype=torch.bool)
        scored[rows, at] = True
        flat = (scored.view(-1).cumsum(0) - 1).view(scored.shape)[rows, at]
        logits = model(**inputs, logits_to_keep=scored.to(device), use_cache=False).logits
        logp = torch.log_softmax(logits, dim=-1)  # in the model's dtype, as lm-eval
        vals = logp[flat.to(device), tok.to(device)].double().cpu()
    else:  # older transformers: the same positions for every row, [B, K, V]
        keep = torch.unique(at)
        col = torch.searchsorted(keep, at)
        logits = model(**inputs, logits_to_keep=keep.to(device), use_cache=False).logits
        logp = torch.log_softmax(logits, dim=-1)
        vals = logp[rows.to(device), col.to(device), tok.to(device)].double().cpu()
    return torch.zeros(n_requests, dtype=torch.float64).index_add_(0, req, vals)


def keeps_positions_per_row(model) -> bool:
    """Does `model`'s forward take a boolean [B, L] `logits_to_keep` (transformers' `slice_logits_to_keep`)?"""
    import sys

    import transformers.modeling_utils as mu

    fn = getattr(mu, "slice_logits_to_keep", None)
    module = sys.modules.get(getattr(type(model).forward, "__module__", ""))
    if fn is None or module is None or getattr(module, "slice_logits_to_keep", None) is not fn:
        return False
    try:  # a behaviour probe: a boolean mask must select positions row by row, flattened
        return tuple(fn(torch.zeros(2, 3, 1), torch.tensor([[True, False, True], [False, True, False]])).shape) == (
            3,
            1,
        )
    except (TypeError, IndexError, RuntimeError):
        return False


MASKABLE = ("eager", "sdpa")  # attention implementations that take a custom 4D mask


def sliding_window(model) -> int | None:
    """The attention window of `model`'s sliding-window layers (Mistral, some Qwen2), or None."""
    config = model.config
    window = getattr(config, "sliding_window", None)
    if not window or getattr(config, "use_sliding_window", True) is False:
        return None
    layer_types = getattr(config, "layer_types", None)
    if layer_types is not None and "sliding_attention" not in layer_types:
        return None
    return int(window)


def check_window(model, encodings: Sequence[tuple[Sequence[int], Sequence[int]]], max_length: int) -> None:
    """The packed mask is plain causal per choice: refuse inputs a sliding window would cut."""
    window = sliding_window(model)
    if window is None:
        return
    longest = max((min(len(c) + len(t), max_length + 1) - 1 for c, t in encodings), default=0)
    if longest > window:
        raise LlmpruneError(
            f"a request of {longest} input tokens is longer than the model's {window}-token sliding attention "
            f"window, which the shared-prefix mask does not apply; pass --scorer lm-eval"
        )


def check_attention(model) -> None:
    impl = getattr(model.config, "_attn_implementation", None) or "eager"
    if impl not in MASKABLE:
        raise LlmpruneError(
            f"the shared-prefix scorer needs a 4D attention mask, which attn_implementation={impl!r} does not "
            f"take; load the model with attn_implementation='sdpa' or pass --scorer lm-eval"
        )


MASK_BUDGET = 1 << 26  # attention-mask elements per batch (B x L x L): 256 MiB in float32


def batches(packed: Sequence[Packed], batch_size: int, mask_budget: int = MASK_BUDGET) -> list[list[Packed]]:
    """Up to `batch_size` sequences per forward pass, longest first (so padding stays small).

    Long sequences go in smaller batches so the [B, 1, L, L] mask stays within `mask_budget` elements.
    """
    order = sorted(packed, key=len, reverse=True)
    out, i = [], 0
    while i < len(order):
        n = min(batch_size, max(1, mask_budget // max(len(order[i]) ** 2, 1)))
        out.append(order[i : i + n])
        i += n
    return out


def shared_prefix_loglikelihoods(
    lm, groups: Sequence[Sequence[tuple[str, str]]], *, batch_size: int = BATCH_SIZE, progress: bool = True
) -> list[list[float]]:
    """Per-group (example), per-request summed log-probabilities, lm-eval's tokens, shared contexts.

    `lm` is the `HFLM` from `harness.make_lm` (its model, tokenizer and window are used).
    """
    from tqdm.auto import tqdm

    if batch_size < 1:
        raise LlmpruneError(f"--batch-size must be >= 1 (got {batch_size})")
    flat = [r for g in groups for r in g]
    index, i = [], 0
    for g in groups:
        index.append(list(range(i, i + len(g))))
        i += len(g)
    encodings = lm_eval_encodings(lm, flat)
    for (_, cont), (context, continuation) in zip(encodings, flat, strict=True):
        if not cont:  # lm-eval asserts the same in its own loop
            raise LlmpruneError(
                f"the choice {continuation!r} (after context ...{context[-40:]!r}) encodes to no tokens of its "
                f"own: the tokenizer merges it into the context; start every choice with a space, as lm-eval does"
            )
    model = lm.model
    check_window(model, encodings, lm.max_length)
    packed = pack_requests(encodings, index, lm.max_length)
    pad = 0  # as lm-eval: padding is masked out, and id 0 always has an embedding row
    model.eval()
    total = torch.zeros(len(flat), dtype=torch.float64)
    bar = tqdm(total=sum(len(p) for p in packed), desc="zero-shot", unit="tok", disable=not progress, leave=False)
    for batch in batches(packed, batch_size):
        total += score_batch(model, batch, len(flat), pad)
        bar.update(sum(len(p) for p in batch))
    bar.close()
    return [[float(total[j]) for j in ix] for ix in index]
