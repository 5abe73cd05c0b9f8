"""lm-evaluation-harness integration: its HFLM scores our requests, on the model in memory.

`lm_eval` is imported lazily (it is an optional dependency, `pip install llmprune[eval]`).

- `make_lm(model, tok)` wraps a live model in lm-eval's `HFLM`.
- `loglikelihoods(lm, requests)` returns lm-eval's summed log-probability of each continuation.
- `reference_evaluate(lm, task)` runs the *same* task file through lm-eval's own task pipeline
  (`ConfigurableTask` + `simple_evaluate`); tests use it to show that our picks equal lm-eval's.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Sequence

from llmprune.errors import LlmpruneError
from llmprune.eval.config import BATCH_SIZE
from llmprune.eval.tasks import TARGET_DELIMITER, Task


def _require_lm_eval() -> None:
    try:
        import lm_eval  # noqa: F401
    except ImportError as e:
        raise LlmpruneError(
            "zero-shot evaluation needs lm-evaluation-harness: pip install 'llmprune[eval]' (lm-eval>=0.4.5)"
        ) from e


@contextlib.contextmanager
def quiet_lm_eval(level: int = logging.ERROR) -> Iterator[None]:
    """Silence lm-eval's informational logging (e.g. the 'pretrained is not a str' warning)."""
    loggers = [logging.getLogger(n) for n in ("lm_eval", "lm-eval")]
    old = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(level)
    try:
        yield
    finally:
        for lg, lvl in zip(loggers, old, strict=True):
            lg.setLevel(lvl)


def make_lm(model, tokenizer, *, batch_size: int = BATCH_SIZE):
    """lm-eval's HFLM around a live `PreTrainedModel` (no copy; lm-eval puts it in eval mode)."""
    _require_lm_eval()
    if batch_size < 1:
        raise LlmpruneError(f"--batch-size must be >= 1 (got {batch_size})")
    from lm_eval.models.huggingface import HFLM

    with quiet_lm_eval():
        return HFLM(pretrained=model, tokenizer=tokenizer, batch_size=batch_size)


def loglikelihoods(lm, requests: Sequence[tuple[str, str]], *, progress: bool = True) -> list[float]:
    """Summed log-probability of each continuation given its context, computed by lm-eval."""
    from lm_eval.api.instance import Instance

    instances = [
        Instance(request_type="loglikelihood", doc={}, arguments=(ctx, cont), idx=i)
        for i, (ctx, cont) in enumerate(requests)
    ]
    with quiet_lm_eval():
        out = lm.loglikelihood(instances, disable_tqdm=not progress)
    return [float(ll) for ll, _ in out]


def _strip(s: str) -> str:
    return s[len(TARGET_DELIMITER) :] if s.startswith(TARGET_DELIMITER) else s


def task_config(task: Task) -> dict:
    """An lm-eval TaskConfig (as a dict) that reads `task.path` the way lm-eval's own tasks are written."""
    import json

    with task.path.open(encoding="utf-8") as f:
        first = json.loads(next(line for line in f if line.strip()))
    common = {
        "task": f"llmprune_{task.name}",
        "dataset_path": "json",
        "dataset_kwargs": {"data_files": {"test": str(task.path)}},
        "test_split": "test",
        "output_type": "multiple_choice",
        "target_delimiter": TARGET_DELIMITER,
        "metric_list": [
            {"metric": "acc", "aggregation": "mean", "higher_is_better": True},
            {"metric": "acc_norm", "aggregation": "mean", "higher_is_better": True},
        ],
        "metadata": {"version": 1.0},
    }
    if "contexts" in first:  # WinoGrande-style: doc_to_text gives the gold index, the choices are contexts
        return common | {
            "doc_to_text": lambda d: d["label"],
            "doc_to_choice": lambda d: d["contexts"],
            "doc_to_target": lambda d: _strip(d["continuation"]),
        }
    return common | {
        "doc_to_text": lambda d: d["context"],
        "doc_to_choice": lambda d: [_strip(c) for c in d["choices"]],
        "doc_to_target": lambda d: d["label"],
    }


def reference_evaluate(lm, task: Task) -> dict:
    """Evaluate `task` with lm-eval's own pipeline (its prompts, requests and metrics).

    Returns acc, acc_norm, each example's log-likelihoods and its per-example acc / acc_norm.
    """
    _require_lm_eval()
    from lm_eval import simple_evaluate
    from lm_eval.api.task import ConfigurableTask
    from lm_eval.tasks import TaskManager

    with quiet_lm_eval():
        t = ConfigurableTask(config=task_config(task))
        res = simple_evaluate(
            model=lm,
            tasks=[t],
            limit=len(task.examples),
            log_samples=True,
            bootstrap_iters=0,
            task_manager=TaskManager(include_defaults=False),  # skip indexing lm-eval's ~14k task files
        )
    name = f"llmprune_{task.name}"
    metrics = res["results"][name]
    samples = sorted(res["samples"][name], key=lambda s: s["doc_id"])
    lls = [[float(r[0]) for r in s["filtered_resps"]] for s in samples]
    return {
        "acc": float(metrics["acc,none"]),
        "acc_norm": float(metrics["acc_norm,none"]),
        "loglikelihoods": lls,
        "per_example_acc": [float(s["acc"]) for s in samples],
        "per_example_acc_norm": [float(s["acc_norm"]) for s in samples],
    }
