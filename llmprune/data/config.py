"""`CalibConfig`: which calibration windows a step draws (source, count, length, seed). No torch needed."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class CalibConfig(BaseModel):
    """Calibration data for importance: N seeded windows of L tokens (LLM-Pruner default: 10 x 64)."""

    model_config = ConfigDict(extra="forbid")
    source: str = Field("wikitext2", description="wikitext2 (valid split), c4, alpaca, ptb, or a file path")
    samples: int = Field(10, ge=1, description="number of calibration windows")
    seq_len: int = Field(64, ge=2, description="tokens per window")
    seed: int = Field(0, description="seed of the window sampling")
