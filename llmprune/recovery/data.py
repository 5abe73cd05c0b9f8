"""Training data for recovery: Alpaca records or plain text -> tokenized examples -> packed rows.

Every example is a list of token ids plus labels (-100 where no loss is taken). Examples are packed
first-fit-decreasing into rows of exactly `cutoff` tokens; `position_ids` restart at 0 for every
example, which transformers turns into a block-diagonal causal mask, so packed examples never see
each other and no compute goes to padding (only the unfilled tail of a row is padding).
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path

import torch

from llmprune.errors import LlmpruneError
from llmprune.recovery.config import RecoveryConfig

IGNORE = -100
TOKENISE_CHUNKS = (32, 1024)  # Alpaca records per tokenizer call: the first, doubling up to the last


@dataclass
class Example:
    ids: list[int]
    labels: list[int]


@dataclass
class Rows:
    """Packed training rows: (N, L) tensors. `labels[i, t]` is the target *at* position t (unshifted)."""

    input_ids: torch.Tensor
    labels: torch.Tensor
    position_ids: torch.Tensor
    lengths: torch.Tensor  # real (non-padding) tokens at the start of each row
    examples: int

    def __len__(self) -> int:
        return self.input_ids.shape[0]

    @property
    def fill(self) -> float:
        """Fraction of row positions that hold real tokens (1.0: no padding at all)."""
        return float(self.lengths.sum()) / self.input_ids.numel() if len(self) else 0.0

    def targets(self, idx: torch.Tensor | slice) -> int:
        """Number of predicted tokens in rows `idx` (labels shifted by one)."""
        return int((self.labels[idx, 1:] != IGNORE).sum())


def _is_alpaca_file(path: Path) -> bool:
    if path.suffix == ".json":
        return True
    if path.suffix != ".jsonl":
        return False
    with path.open(encoding="utf-8") as f:
        for line in f:
            if line.strip():
                try:
                    first = json.loads(line)
                except json.JSONDecodeError as e:
                    raise LlmpruneError(f"{path}: line 1 is not valid JSON ({e.msg})") from e
                return isinstance(first, dict) and "instruction" in first
    raise LlmpruneError(f"{path} is empty; give a file with training examples")


def load_source(data: str) -> tuple[str, list[dict] | str]:
    """Resolve `data` to ("alpaca", records) or ("text", corpus). Raises LlmpruneError with the fix."""
    from llmprune.data.instructions import read_instructions
    from llmprune.data.sources import SOURCES, load_text, resolve_file

    if data == "alpaca":
        file, tried = resolve_file(SOURCES["alpaca"].files["train"])
        if file is not None:
            return "alpaca", read_instructions(file)
        from llmprune import hub

        hub_error = hub.unavailable()
        if hub_error is None:
            try:
                from datasets import load_dataset

                return "alpaca", [dict(r) for r in load_dataset("yahma/alpaca-cleaned", split="train")]
            except Exception as e:  # no network, missing dataset, ...
                hub_error = type(e).__name__
        raise LlmpruneError(
            f"no Alpaca data found (tried {'; '.join(tried)}; Hub: {hub_error}). Set LLMPRUNE_DATA_DIR "
            "to a folder with alpaca/alpaca_cleaned.json or pass --data PATH"
        )
    if data in SOURCES:
        return "text", load_text(data)
    path = Path(data).expanduser()
    if not path.is_file():
        raise LlmpruneError(
            f"training data not found: {data!r} is neither a source ({', '.join(SOURCES)}) nor an existing file"
        )
    if _is_alpaca_file(path):
        return "alpaca", read_instructions(path)
    try:
        text = load_text(str(path))
    except UnicodeDecodeError as e:
        raise LlmpruneError(f"{path} is not UTF-8 text; give an Alpaca .json/.jsonl or a text file") from e
    if not text.strip():
        raise LlmpruneError(f"{path} holds no text; give a file with training examples")
    return "text", text


def alpaca_examples(records: list[dict], tokenizer, cfg: RecoveryConfig) -> list[Example]:
    """Prompt + response + EOS, truncated to `cutoff`; the prompt is masked unless `train_on_inputs`."""
    from llmprune.data.instructions import format_alpaca

    prompts = [format_alpaca(r) for r in records]
    full = [p + r["output"] for p, r in zip(prompts, records, strict=True)]
    enc = tokenizer(full, add_special_tokens=True, truncation=True, max_length=cfg.cutoff)["input_ids"]
    plen = None
    if not cfg.train_on_inputs:
        plen = [len(x) for x in tokenizer(prompts, add_special_tokens=True)["input_ids"]]
    eos = tokenizer.eos_token_id
    out = []
    for i, ids in enumerate(enc):
        ids = list(ids)
        if eos is not None and len(ids) < cfg.cutoff and (not ids or ids[-1] != eos):
            ids.append(eos)
        labels = list(ids)
        if plen is not None:
            labels[: plen[i]] = [IGNORE] * min(plen[i], len(ids))
        out.append(Example(ids, labels))
    return out


def text_examples(text: str, tokenizer, cfg: RecoveryConfig) -> list[Example]:
    """A corpus cut into consecutive windows of `cutoff` tokens (full rows: nothing to pack or pad), each
    starting with BOS when the tokenizer adds one by default (`llmprune.data.calib`)."""
    from llmprune.data.calib import bos_id, tokenize_text

    ids = tokenize_text(tokenizer, text).tolist()
    bos = bos_id(tokenizer)
    length = cfg.cutoff - (bos is not None)
    n = len(ids) // length
    if n == 0:
        raise LlmpruneError(f"the training text has {len(ids)} tokens, fewer than one row of --cutoff {cfg.cutoff}")
    head = [bos] if bos is not None else []
    rows = [head + ids[i * length : (i + 1) * length] for i in range(n)]
    return [Example(row, list(row)) for row in rows]


def first_fit_rows(lengths: list[int], cutoff: int) -> list[list[int]]:
    """First-fit-decreasing: indices of `lengths` grouped into rows holding at most `cutoff` tokens.

    Longest first (ties by index); each goes to the first row with room. A max-tree over the rows' free
    space finds that row in O(log n), so 50k Alpaca examples pack in about a second (a linear scan of the
    rows took minutes); the rows are exactly those of the scan.
    """
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    size = 1
    while size < len(lengths):
        size *= 2
    free = [cutoff] * (2 * size)  # free[node]: the most free space of any row under node (unopened: cutoff)
    rows: list[list[int]] = []
    for i in order:
        n = lengths[i]
        if n > cutoff:
            raise ValueError(f"an example of {n} tokens does not fit a row of {cutoff}")
        node = 1
        while node < size:  # leftmost leaf with room
            node = 2 * node if free[2 * node] >= n else 2 * node + 1
        r = node - size
        if r == len(rows):
            rows.append([])
        rows[r].append(i)
        free[node] -= n
        node //= 2
        while node:
            free[node] = max(free[2 * node], free[2 * node + 1])
            node //= 2
    return rows


def pack(examples: list[Example], cutoff: int, pad_id: int) -> Rows:
    """First-fit-decreasing packing into rows of `cutoff` tokens (deterministic, `first_fit_rows`).

    Positions restart at 0 per example; the first token of every example gets no loss (nothing precedes
    it), exactly as when it is trained alone. Unfilled tails hold `pad_id`, no labels, and form a segment
    of their own (positions 0, 1, ...), so they cannot affect the real tokens.
    """
    rows = first_fit_rows([len(ex.ids) for ex in examples], cutoff)
    ids = torch.full((len(rows), cutoff), pad_id, dtype=torch.long)
    labels = torch.full((len(rows), cutoff), IGNORE, dtype=torch.long)
    pos = torch.zeros((len(rows), cutoff), dtype=torch.long)
    lengths = torch.zeros(len(rows), dtype=torch.long)
    for r, members in enumerate(rows):
        t = 0
        for i in sorted(members):
            ex = examples[i]
            n = len(ex.ids)
            ids[r, t : t + n] = torch.tensor(ex.ids)
            labels[r, t : t + n] = torch.tensor(ex.labels)
            labels[r, t] = IGNORE
            pos[r, t : t + n] = torch.arange(n)
            t += n
        pos[r, t:] = torch.arange(cutoff - t)
        lengths[r] = t
    return Rows(ids, labels, pos, lengths, len(examples))


def _tokenised_alpaca(records: list[dict], tokenizer, cfg: RecoveryConfig, tokens: int | None, progress: bool):
    """Examples of `records` in order, tokenised in chunks (with a progress bar); stops once the examples
    after the first `val_size` hold `tokens` tokens (None: all of them)."""
    from tqdm.auto import tqdm

    out: list[Example] = []
    have = 0
    bar = tqdm(total=len(records), desc="tokenising", unit="example", disable=not progress, leave=False)
    size, start = TOKENISE_CHUNKS[0], 0
    try:
        while start < len(records):
            chunk = alpaca_examples(records[start : start + size], tokenizer, cfg)
            start, size = start + size, min(2 * size, TOKENISE_CHUNKS[1])
            out += chunk
            have += sum(len(ex.ids) for ex in out[max(cfg.val_size, len(out) - len(chunk)) :])
            bar.update(len(chunk))
            if tokens is not None and have >= tokens:
                break
    finally:
        bar.close()
    return out


def build_datasets(tokenizer, cfg: RecoveryConfig, *, progress: bool = False) -> tuple[Rows, Rows | None, dict]:
    """(train rows, validation rows or None, info). The split is seeded and taken before packing.

    With `steps`, Alpaca records are tokenised only until the training examples fill the rows those
    steps take (`steps x batch_size` rows of `cutoff` tokens), so `--steps 10` does not prepare 50k examples.
    """
    if not cfg.resolved:
        cfg = cfg.resolve(cuda=torch.cuda.is_available())
    kind, payload = load_source(cfg.data)
    limit = cfg.max_examples + cfg.val_size if cfg.max_examples is not None else None
    bounded = False
    if kind == "alpaca":
        if not payload:
            raise LlmpruneError(f"{cfg.data}: no records; give a non-empty Alpaca file")
        records = list(payload)
        random.Random(cfg.seed).shuffle(records)  # the permutation shuffling the examples would make
        records = records[:limit]
        tokens = cfg.steps * cfg.batch_size * cfg.cutoff if cfg.steps is not None else None
        examples = _tokenised_alpaca(records, tokenizer, cfg, tokens, progress)
        bounded = len(examples) < len(records)
    else:
        examples = text_examples(payload, tokenizer, cfg)
        random.Random(cfg.seed).shuffle(examples)
        examples = examples[:limit]
    if cfg.val_size >= len(examples):
        raise LlmpruneError(f"--val-size {cfg.val_size} leaves no training examples (only {len(examples)}); lower it")
    val, train = examples[: cfg.val_size], examples[cfg.val_size :]
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else (tokenizer.eos_token_id or 0)
    train_rows = pack(train, cfg.cutoff, pad)
    val_rows = pack(val, cfg.cutoff, pad) if val else None
    info = {
        "kind": kind,
        "examples": len(train),
        "val_examples": len(val),
        "rows": len(train_rows),
        "fill": round(train_rows.fill, 4),
        "tokens": int(train_rows.lengths.sum()),
        "bounded_by_steps": bounded,
    }
    return train_rows, val_rows, info
