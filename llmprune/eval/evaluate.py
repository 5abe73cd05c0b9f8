"""One evaluation entry point for every command: perplexity and zero-shot accuracy in one dict."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

from llmprune.errors import LlmpruneError
from llmprune.eval.tasks import Task


def evaluate(
    model,
    tokenizer,
    *,
    ppl: Sequence[str] = ("wikitext2",),
    seq_len: int = 128,
    max_windows: int | None = None,
    tasks: Sequence[str | Task] = (),
    limit: int | None = None,
    batch_size: int = 4,
    scorer: str = "shared-prefix",
    cache: str | Path | None = None,
    split: str = "test",
    progress: bool = True,
) -> dict:
    """Perplexity on each of `ppl` and zero-shot accuracy on each of `tasks`.

    Returns a dict with, when `ppl` is non-empty, `ppl` ({dataset: value}), `seq_len` and `windows`;
    when `tasks` is non-empty, `tasks` ({name: {acc, acc_norm, n, total, seconds}}), `mean_acc`,
    `mean_acc_norm` and `limit`; and always `seconds`. Data and task files are read and validated
    before any model work.

    >>> evaluate(model, tok, ppl=["wikitext2"], tasks=["boolq"], limit=100)  # doctest: +SKIP
    {'ppl': {'wikitext2': 56.3}, 'seq_len': 128, 'windows': 256, 'tasks': {'boolq': {...}}, ...}
    """
    from llmprune.data import load_text
    from llmprune.eval.zeroshot import ensure_tasks, zeroshot

    if not ppl and not tasks:
        raise LlmpruneError("nothing to evaluate: give perplexity datasets (--ppl) or zero-shot tasks (--tasks)")
    t0 = time.perf_counter()
    texts = {name: load_text(name, split) for name in ppl}
    loaded = ensure_tasks(tasks, limit=limit)
    result: dict = {}
    if texts:
        from llmprune.eval.ppl import perplexity

        result["ppl"] = {}
        windows = 0
        for name, text in texts.items():
            value, windows = perplexity(
                model,
                tokenizer,
                text,
                seq_len=seq_len,
                max_windows=max_windows,
                batch_size=batch_size,
                progress=progress,
            )
            result["ppl"][name] = value
        result["seq_len"] = seq_len
        result["windows"] = windows
    if loaded:
        zs = zeroshot(
            model, tokenizer, loaded, limit=limit, batch_size=batch_size, scorer=scorer, cache=cache, progress=progress
        )
        zs.pop("seconds")
        result.update(zs)
    result["seconds"] = round(time.perf_counter() - t0, 2)
    return result
