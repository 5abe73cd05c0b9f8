"""llmprune: structural pruning for Hugging Face causal language models."""

from llmprune.errors import LlmpruneError

__version__ = "0.1.0"

__all__ = ["LlmpruneError", "__version__"]
