"""Evaluation: perplexity (and, in other modules, zero-shot accuracy and speed)."""

from llmprune.eval.ppl import perplexity, perplexity_windows

__all__ = ["perplexity", "perplexity_windows"]
