"""`BenchConfig`: what `llmprune bench` measures and how (validated; importing it does not load torch)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

from llmprune.models.options import DTYPE_HELP, DtypeName, check_device


class BenchConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    device: str = Field("auto", description="auto, cpu, cuda, cuda:N")
    dtype: DtypeName = Field("auto", description=DTYPE_HELP)
    prompt_len: int = Field(128, ge=1, description="prompt tokens (random ids, the same for every model)")
    new_tokens: int = Field(32, ge=2, description="tokens generated per run (greedy, never stops early)")
    batch_sizes: tuple[int, ...] = Field((1, 16), min_length=1, description="batch sizes")
    repeats: int = Field(3, ge=1, description="timed runs per model and batch size (the median is reported)")
    memory: bool = Field(True, description="measure peak memory (on the CPU: one extra process per model)")

    @field_validator("device")
    @classmethod
    def _device(cls, v: str) -> str:
        return check_device(v)

    @field_validator("batch_sizes")
    @classmethod
    def _batches(cls, v: tuple[int, ...]) -> tuple[int, ...]:
        if any(b < 1 for b in v):
            raise ValueError(f"batch sizes must be positive integers, e.g. 1,16 (got {list(v)})")
        return v
