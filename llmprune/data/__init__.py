"""Data sources: explicit path, then $LLMPRUNE_DATA_DIR, then the Hugging Face Hub.

`CalibConfig` and the sources import without torch; `calibration_batches` loads it on first use.
"""

from typing import Any

from llmprune.data.config import CalibConfig
from llmprune.data.sources import SOURCES, load_text, resolve_file

__all__ = ["SOURCES", "CalibConfig", "calibration_batches", "load_text", "resolve_file"]


def __getattr__(name: str) -> Any:
    if name == "calibration_batches":
        from llmprune.data.calib import calibration_batches

        return calibration_batches
    raise AttributeError(f"module 'llmprune.data' has no attribute {name!r}")
