"""Zero-shot multiple-choice accuracy with lm-evaluation-harness conventions.

Every (context, continuation) request is tokenized by lm-eval (`HFLM`, on the model in memory) and its
log-likelihood computed by one of two scorers:

- `shared-prefix` (default): each example's context runs once, its choices packed behind it
  (`llmprune.eval.shared_prefix`); same numbers as lm-eval up to float rounding, about half the tokens;
- `lm-eval`: HFLM's own `loglikelihood` loop, one sequence per request.

The picks follow lm-eval's `ConfigurableTask.process_results`:

- `acc`: the choice with the highest summed log-likelihood;
- `acc_norm`: the highest log-likelihood divided by the choice's length in characters, as lm-eval's
  `doc_to_choice` returns it (without the leading target delimiter).

Ties go to the first choice (numpy argmax), as in lm-eval.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from llmprune.errors import LlmpruneError
from llmprune.eval.config import BATCH_SIZE, SCORERS
from llmprune.eval.tasks import Example, Task, load_task

if TYPE_CHECKING:
    from llmprune.eval.cache import ResultCache


@dataclass(frozen=True)
class TaskResult:
    name: str
    acc: float
    acc_norm: float
    n: int  # examples scored
    total: int  # examples in the file
    seconds: float
    picks: tuple[int, ...]  # acc pick per example
    picks_norm: tuple[int, ...]  # acc_norm pick per example
    cached: int = 0  # examples whose log-likelihoods came from a --cache file

    def to_dict(self) -> dict:
        return {
            "acc": self.acc,
            "acc_norm": self.acc_norm,
            "n": self.n,
            "total": self.total,
            "cached": self.cached,
            "seconds": round(self.seconds, 2),
        }


def _argmax(values: Sequence[float]) -> int:
    best = 0
    for i, v in enumerate(values):
        if v > values[best]:
            best = i
    return best


def pick(lls: Sequence[float], norm_lens: Sequence[int]) -> tuple[int, int]:
    """(acc pick, acc_norm pick) of one example from its per-choice log-likelihoods."""
    if len(lls) != len(norm_lens) or not lls:
        raise ValueError(f"{len(lls)} log-likelihoods for {len(norm_lens)} choices")
    return _argmax(lls), _argmax([ll / n for ll, n in zip(lls, norm_lens, strict=True)])


def score_examples(examples: Sequence[Example], lls: Sequence[Sequence[float]]) -> tuple[float, float, list, list]:
    """acc, acc_norm and the picks of `examples`, given lls[i][j] for example i, choice j."""
    if len(examples) != len(lls):
        raise ValueError(f"{len(lls)} results for {len(examples)} examples")
    picks, picks_norm = [], []
    for ex, ll in zip(examples, lls, strict=True):
        p, pn = pick(ll, ex.norm_lens)
        picks.append(p)
        picks_norm.append(pn)
    n = len(examples)
    acc = sum(p == ex.label for p, ex in zip(picks, examples, strict=True)) / n
    acc_norm = sum(p == ex.label for p, ex in zip(picks_norm, examples, strict=True)) / n
    return acc, acc_norm, picks, picks_norm


def check_scorer(scorer: str) -> str:
    if scorer not in SCORERS:
        raise LlmpruneError(f"unknown scorer {scorer!r}; use one of: {', '.join(SCORERS)}")
    return scorer


CHUNK = 256  # examples scored (and cached) together with --cache: a resume point, and a pool to sort by length


def check_finite(task: str, examples: Sequence[Example], lls: Sequence[Sequence[float]]) -> None:
    """A NaN or infinite log-likelihood means broken numbers, not a pick: fail, naming the example."""
    for ex, ll in zip(examples, lls, strict=True):
        if not all(math.isfinite(v) for v in ll):
            raise LlmpruneError(
                f"{task}: example {ex.id} got log-likelihoods {list(ll)}; the model's outputs are not finite "
                f"(fp16 overflow? run with --dtype float32 or bfloat16, or check the model's weights)"
            )


def _score(lm, examples: Sequence[Example], *, scorer: str, batch_size: int, progress: bool) -> list[list[float]]:
    from llmprune.eval.harness import loglikelihoods

    if scorer == "shared-prefix":
        from llmprune.eval.shared_prefix import shared_prefix_loglikelihoods

        return shared_prefix_loglikelihoods(
            lm, [ex.requests for ex in examples], batch_size=batch_size, progress=progress
        )
    flat = [r for ex in examples for r in ex.requests]
    out = loglikelihoods(lm, flat, progress=progress)
    lls, i = [], 0
    for ex in examples:
        lls.append(out[i : i + len(ex.requests)])
        i += len(ex.requests)
    return lls


def task_loglikelihoods(
    lm,
    task: Task,
    *,
    progress: bool = True,
    scorer: str = "shared-prefix",
    batch_size: int = BATCH_SIZE,
    cache: ResultCache | None = None,
) -> list[list[float]]:
    """Per-example, per-choice log-likelihoods of `task` (lm-eval's tokens; see the module docstring).

    With a `cache`, examples it holds are not scored again, and the others are scored in file order,
    `CHUNK` at a time, each chunk appended to the cache as soon as it is done.
    """
    return _cached_loglikelihoods(lm, task, progress=progress, scorer=scorer, batch_size=batch_size, cache=cache)[0]


def _cached_loglikelihoods(
    lm, task: Task, *, progress: bool, scorer: str, batch_size: int, cache: ResultCache | None
) -> tuple[list[list[float]], int]:
    """`task_loglikelihoods` and how many examples came from the cache (each looked up once)."""
    check_scorer(scorer)
    if cache is None:
        lls = _score(lm, task.examples, scorer=scorer, batch_size=batch_size, progress=progress)
        check_finite(task.name, task.examples, lls)
        return lls, 0
    from tqdm.auto import tqdm

    lls = [cache.get(task.name, ex) for ex in task.examples]
    todo = [i for i, ll in enumerate(lls) if ll is None]
    cached = len(lls) - len(todo)
    bar = tqdm(total=len(lls), initial=cached, desc=task.name, unit="ex", disable=not progress)
    for start in range(0, len(todo), CHUNK):
        idx = todo[start : start + CHUNK]
        chunk = [task.examples[i] for i in idx]
        out = _score(lm, chunk, scorer=scorer, batch_size=batch_size, progress=False)
        check_finite(task.name, chunk, out)  # before the cache keeps them
        cache.put(task.name, chunk, out)
        for i, ll in zip(idx, out, strict=True):
            lls[i] = ll
        bar.update(len(idx))
    bar.close()
    return lls, cached


def evaluate_task(
    lm,
    task: Task,
    *,
    progress: bool = True,
    scorer: str = "shared-prefix",
    batch_size: int = BATCH_SIZE,
    cache: ResultCache | None = None,
) -> TaskResult:
    t0 = time.perf_counter()
    lls, cached = _cached_loglikelihoods(lm, task, progress=progress, scorer=scorer, batch_size=batch_size, cache=cache)
    acc, acc_norm, picks, picks_norm = score_examples(task.examples, lls)
    return TaskResult(
        task.name,
        acc,
        acc_norm,
        len(task.examples),
        task.total,
        time.perf_counter() - t0,
        tuple(picks),
        tuple(picks_norm),
        cached,
    )


def load_tasks(specs: Sequence[str], *, limit: int | None = None) -> list[Task]:
    """Read and validate every task before any model work (a bad file fails fast)."""
    tasks = [load_task(s, limit=limit) for s in specs]
    names = [t.name for t in tasks]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise LlmpruneError(f"task listed twice: {', '.join(dup)}")
    return tasks


def ensure_tasks(tasks: Sequence[str | Task], *, limit: int | None = None) -> list[Task]:
    """Load the names / paths among `tasks` (validating them all first); keep `Task`s as given."""
    fresh = iter(load_tasks([t for t in tasks if not isinstance(t, Task)], limit=limit))
    return [t if isinstance(t, Task) else next(fresh) for t in tasks]


def zeroshot(
    model,
    tokenizer,
    tasks: Sequence[str | Task],
    *,
    limit: int | None = None,
    batch_size: int = BATCH_SIZE,
    scorer: str = "shared-prefix",
    cache: str | Path | None = None,
    progress: bool = True,
) -> dict:
    """Zero-shot accuracy of `model` on `tasks` (names, paths or loaded `Task`s).

    `batch_size`: sequences per forward pass (packed examples for `shared-prefix`, requests for `lm-eval`).
    `cache`: a JSON Lines file that keeps every scored example, so an interrupted run resumes
    (`llmprune.eval.cache`).

    Returns `{"tasks": {name: {acc, acc_norm, n, total, cached, seconds}}, "mean_acc", "mean_acc_norm",
    "limit", "scorer", "seconds"}`.

    >>> zeroshot(model, tok, ["boolq", "piqa"], limit=100)["mean_acc"]  # doctest: +SKIP
    """
    from llmprune.eval.harness import make_lm
    from llmprune.models.halfcpu import fp32_compute

    t0 = time.perf_counter()
    check_scorer(scorer)
    loaded = ensure_tasks(tasks, limit=limit)
    if not loaded:
        raise LlmpruneError("no zero-shot tasks given; pass e.g. --tasks boolq,piqa,hellaswag,arc_easy")
    lm = make_lm(model, tokenizer, batch_size=batch_size)
    store = None
    if cache is not None:
        from llmprune.eval.cache import ResultCache, model_fingerprint

        store = ResultCache(Path(cache), model_fingerprint(model, tokenizer, window=lm.max_length))
    results = {}
    try:
        with fp32_compute(model):
            for task in loaded:
                if progress:
                    print(f"zero-shot {task.name}: {len(task.examples)} examples", file=sys.stderr, flush=True)
                results[task.name] = evaluate_task(
                    lm, task, progress=progress, scorer=scorer, batch_size=batch_size, cache=store
                ).to_dict()
    finally:  # release the cache's lock also on an error or Ctrl-C (a notebook keeps the traceback)
        if store is not None:
            store.close()
    accs = [r["acc"] for r in results.values()]
    norms = [r["acc_norm"] for r in results.values()]
    return {
        "tasks": results,
        "mean_acc": sum(accs) / len(accs),
        "mean_acc_norm": sum(norms) / len(norms),
        "limit": limit,
        "scorer": scorer,
        "seconds": round(time.perf_counter() - t0, 2),
    }
