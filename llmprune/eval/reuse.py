"""Evaluation results kept under the llmprune cache, so a recipe run again does not re-evaluate its dense model.

A result is stored as `$LLMPRUNE_CACHE/evaluations/<key>.json`; the key hashes everything that decides
the numbers: the model (`model_fingerprint`: weights, config, tokenizer), the evaluation settings
(`EvalConfig` less `before` and `cache`), the data (the perplexity texts, the task examples), the device
type and the llmprune and torch versions. A changed setting, model or data file is a miss. A damaged entry
is ignored (and replaced).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from pathlib import Path

from llmprune.eval.config import EvalConfig

FORMAT = "llmprune-evaluation"
VERSION = 1


def evaluation_key(model, tokenizer, cfg: EvalConfig) -> str:
    """Hash of the model, the settings, the data and the software that an evaluation's numbers depend on."""
    import torch

    from llmprune.data import load_text
    from llmprune.eval.cache import model_fingerprint
    from llmprune.eval.zeroshot import load_tasks
    from llmprune.version import __version__

    h = hashlib.blake2b(digest_size=20)
    device = next(iter(model.parameters())).device.type
    settings = cfg.model_dump(mode="json", exclude={"before", "cache"})
    parts = {"model": model_fingerprint(model, tokenizer), "settings": settings, "device": device}
    parts["versions"] = [__version__, torch.__version__]
    h.update(json.dumps(parts, sort_keys=True).encode())
    for name in cfg.ppl:
        h.update(f"|ppl|{name}|".encode() + load_text(name, cfg.split).encode("utf-8", errors="surrogatepass"))
    for task in load_tasks(cfg.tasks, limit=cfg.limit):
        examples = [[ex.id, ex.requests, ex.label, ex.norm_lens] for ex in task.examples]
        h.update(f"|task|{task.name}|".encode() + json.dumps(examples, ensure_ascii=False).encode())
    return h.hexdigest()


def evaluations_dir() -> Path:
    from llmprune.models.cache import cache_dir

    return cache_dir() / "evaluations"


def read_entry(key: str) -> dict | None:
    """The stored entry of `key` ({"result", "seconds"}), or None when absent or unreadable."""
    path = evaluations_dir() / f"{key}.json"
    try:
        entry = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    ok = isinstance(entry, dict) and entry.get("format") == FORMAT and entry.get("version") == VERSION
    return entry if ok and isinstance(entry.get("result"), dict) else None


def write_entry(key: str, result: dict, seconds: float) -> None:
    """Store `result`; a cache that cannot be written is skipped (the run itself does not depend on it)."""
    from llmprune.fsutil import atomic_write_json

    entry = {"format": FORMAT, "version": VERSION, "result": result, "seconds": round(seconds, 2)}
    from llmprune.errors import LlmpruneError

    try:
        evaluations_dir().mkdir(parents=True, exist_ok=True)
        atomic_write_json(evaluations_dir() / f"{key}.json", entry)
    except (OSError, LlmpruneError):
        pass


def cached_evaluation(
    model, tokenizer, cfg: EvalConfig, evaluate: Callable[[], dict], *, say: Callable[[str], None] = print
) -> tuple[dict, float]:
    """`evaluate()`'s result for this model and settings, from the cache when it holds it; returns (result,
    seconds the evaluation took when it ran). `say` reports a reuse and the time it saved."""
    t0 = time.perf_counter()
    key = evaluation_key(model, tokenizer, cfg)
    entry = read_entry(key)
    if entry is not None:
        spent = time.perf_counter() - t0
        saved = max(float(entry.get("seconds", 0.0)) - spent, 0.0)
        say(
            f"reused the cached evaluation ({evaluations_dir() / key}.json): {saved:.0f} s saved "
            f"({entry.get('seconds', 0):.0f} s when measured, {spent:.1f} s to fingerprint the model)"
        )
        return entry["result"], float(entry.get("seconds", 0.0))
    t1 = time.perf_counter()
    result = evaluate()
    seconds = time.perf_counter() - t1
    write_entry(key, result, seconds)
    return result, seconds
