"""One evaluation entry point for every command: perplexity and zero-shot accuracy in one dict."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from llmprune.errors import validate_config
from llmprune.eval.config import EvalConfig
from llmprune.eval.tasks import Task


def eval_config(cfg: EvalConfig | None = None, **settings: Any) -> EvalConfig:
    """`cfg` (default: `EvalConfig()`) with `settings` (EvalConfig fields) applied, validated."""
    data = (cfg or EvalConfig()).model_dump() | settings
    return validate_config(EvalConfig, data, what="evaluation settings", show_input=True)


def evaluate(
    model,
    tokenizer,
    cfg: EvalConfig | None = None,
    *,
    loaded_tasks: Sequence[Task] | None = None,
    progress: bool = True,
    **settings: Any,
) -> dict:
    """Perplexity on each of `cfg.ppl` and zero-shot accuracy on each of `cfg.tasks`.

    `settings` override fields of `cfg` (see `EvalConfig`); `loaded_tasks` are tasks already loaded
    (`llmprune.eval.zeroshot.load_tasks`) used instead of reading `cfg.tasks` again. Returns a dict with, when `ppl` is non-empty, `ppl`
    ({dataset: value}), `seq_len` and `windows`; when there are tasks, `tasks` ({name: {acc, acc_norm, n,
    total, seconds}}), `mean_acc`, `mean_acc_norm` and `limit`; and always `seconds`. Data and task
    files are read and validated before any model work.

    >>> evaluate(model, tok, ppl=["wikitext2"], tasks=["boolq"], limit=100)  # doctest: +SKIP
    {'ppl': {'wikitext2': 56.3}, 'seq_len': 128, 'windows': 256, 'tasks': {'boolq': {...}}, ...}
    """
    from llmprune.data import load_text
    from llmprune.eval.zeroshot import load_tasks, zeroshot

    cfg = eval_config(cfg, **settings)
    t0 = time.perf_counter()
    texts = {name: load_text(name, cfg.split) for name in cfg.ppl}
    loaded = list(loaded_tasks) if loaded_tasks is not None else load_tasks(cfg.tasks, limit=cfg.limit)
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
                seq_len=cfg.seq_len,
                max_windows=cfg.max_windows,
                batch_size=cfg.batch_size,
                progress=progress,
            )
            result["ppl"][name] = value
        result["seq_len"] = cfg.seq_len
        result["windows"] = windows
    if loaded:
        zs = zeroshot(
            model,
            tokenizer,
            loaded,
            limit=cfg.limit,
            batch_size=cfg.batch_size,
            scorer=cfg.scorer,
            cache=cfg.cache,
            progress=progress,
        )
        zs.pop("seconds")
        result.update(zs)
    result["seconds"] = round(time.perf_counter() - t0, 2)
    return result
