"""The names of dtypes and devices every config and command accepts, checked without loading torch."""

from __future__ import annotations

import re
from typing import Literal

DTYPE_NAMES: tuple[str, ...] = ("auto", "float32", "fp32", "bfloat16", "bf16", "float16", "fp16")
DtypeName = Literal["auto", "float32", "fp32", "bfloat16", "bf16", "float16", "fp16"]
DTYPE_HELP = (
    "auto (bf16 on GPU; on CPU fp32, or bf16 when the checkpoint is stored in bf16), float32, bfloat16, float16"
)
_DEVICE = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")


def check_device(device: str) -> str:
    """`device` when it names one (auto, cpu, mps, cuda, cuda:N); ValueError naming the choices otherwise."""
    if not isinstance(device, str) or not _DEVICE.match(device):
        raise ValueError(f"unknown device {device!r}; use auto, cpu, cuda or cuda:N")
    return device
