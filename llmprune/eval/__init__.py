"""Accuracy evaluation: perplexity and zero-shot multiple-choice accuracy (speed and size live in `llmprune.perf`).

`EvalConfig` imports without torch; `evaluate` and `perplexity` load it on first use.
"""

from typing import Any

from llmprune.eval.config import EvalConfig

__all__ = ["EvalConfig", "evaluate", "perplexity", "perplexity_windows"]


def __getattr__(name: str) -> Any:
    if name == "evaluate":
        from llmprune.eval.evaluate import evaluate

        return evaluate
    if name in ("perplexity", "perplexity_windows"):
        from llmprune.eval import ppl

        return getattr(ppl, name)
    raise AttributeError(f"module 'llmprune.eval' has no attribute {name!r}")
