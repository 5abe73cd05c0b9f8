"""Data sources: explicit path, then $LLMPRUNE_DATA_DIR, then the Hugging Face Hub."""

from llmprune.data.calib import calibration_batches
from llmprune.data.sources import SOURCES, load_text, resolve_file

__all__ = ["SOURCES", "calibration_batches", "load_text", "resolve_file"]
