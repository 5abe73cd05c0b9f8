"""bf16/fp16 weights on a CPU without native half-precision matrix kernels: compute each Linear in fp32.

A bf16 model stays bf16 on the CPU when its checkpoint is (`dtype: auto`: LLaMA-7B takes 13.5 GB instead
of 27), but most CPUs (AVX2, AVX-512 without BF16) have no bf16 GEMM: PyTorch then runs a generic kernel,
measured here (2 cores, AVX2) at 21 GFLOP/s for `x @ W.T` and 0.26 GFLOP/s for the backward `g @ W`, against
160 GFLOP/s in fp32. `fp32_compute(model)` makes every half-precision Linear of `model` on such a CPU
multiply in fp32 for the duration of a block: the weight is upcast one module at a time (the largest
transient copy is one matrix), the result goes back to the activations' dtype, and the backward pass
recomputes the upcast instead of keeping it, so memory stays that of the bf16 model. Outputs equal the
native bf16 kernels' up to the order of the fp32 accumulation; gradients of the weights land in their
dtype as usual. On CPUs with native bf16 (AVX-512 BF16, AMX), on GPUs and for fp32 models it does
nothing.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch import nn

HALF = (torch.bfloat16, torch.float16)


class _Fp32Linear(torch.autograd.Function):
    """y = x W^T + b computed in fp32 from half-precision x, W, b; the upcasts are redone in backward."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        ctx.save_for_backward(x, weight)
        ctx.bias_dtype = None if bias is None else bias.dtype
        out = F.linear(x.float(), weight.float(), None if bias is None else bias.float())
        return out.to(x.dtype)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        x, weight = ctx.saved_tensors
        g = grad.float()
        grad_x = grad_w = grad_b = None
        if ctx.needs_input_grad[0]:
            grad_x = (g @ weight.float()).to(x.dtype)
        if ctx.needs_input_grad[1]:
            flat = g.reshape(-1, g.shape[-1])
            grad_w = (flat.T @ x.reshape(-1, x.shape[-1]).float()).to(weight.dtype)
        if ctx.bias_dtype is not None and ctx.needs_input_grad[2]:
            grad_b = g.reshape(-1, g.shape[-1]).sum(0).to(ctx.bias_dtype)
        return grad_x, grad_w, grad_b


def _forward(module: nn.Linear, x: torch.Tensor) -> torch.Tensor:
    if x.dtype not in HALF or module.weight.device.type != "cpu":
        return F.linear(x, module.weight, module.bias)
    return _Fp32Linear.apply(x, module.weight, module.bias)


@functools.cache
def native_half_matmul() -> bool:
    """Whether this CPU multiplies bf16 matrices natively (oneDNN with AVX-512 BF16 or AMX)."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def half_linears(model: nn.Module) -> list[nn.Linear]:
    """The Linear modules of `model` holding half-precision weights on the CPU."""
    return [
        m
        for m in model.modules()
        if isinstance(m, nn.Linear) and m.weight.dtype in HALF and m.weight.device.type == "cpu"
    ]


@contextlib.contextmanager
def fp32_compute(model: nn.Module, *, force: bool = False) -> Iterator[int]:
    """Within the block, the half-precision Linears of `model` on the CPU multiply in fp32 (see the module
    docstring); yields how many were switched (0 where the CPU has native bf16 kernels, unless `force`).
    Nested use is harmless; each module gets its own forward back on exit."""
    switched = [] if native_half_matmul() and not force else half_linears(model)
    saved = []
    for m in switched:
        saved.append((m, m.__dict__.get("forward")))
        m.forward = functools.partial(_forward, m)
    try:
        yield len(switched)
    finally:
        for m, before in reversed(saved):
            if before is None:
                m.__dict__.pop("forward", None)
            else:
                m.forward = before
