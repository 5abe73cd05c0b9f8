"""Model loading: hub ids, local folders, GGUF files, llmprune folders and built-in aliases."""

from llmprune.models.load import load_model, load_tokenizer, resolve_device, resolve_dtype
from llmprune.models.params import count_params

__all__ = ["count_params", "load_model", "load_tokenizer", "resolve_device", "resolve_dtype"]
