"""bf16 weights on a CPU without bf16 kernels: Linears multiply in fp32, with the bf16 model's memory."""

from __future__ import annotations

import pytest
import torch

from llmprune.models.halfcpu import fp32_compute, half_linears


def _loss(model, ids):
    logits = model(input_ids=ids, use_cache=False).logits.float()
    return torch.nn.functional.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), ids[:, 1:].reshape(-1))


@pytest.mark.parametrize("family", ["llama", "qwen2"])  # qwen2: q/k/v biases go through the fp32 path too
def test_fp32_compute_matches_the_fp32_model_better_than_bf16_kernels(make_tiny, family):
    """Logits and weight gradients equal those of the same bf16 weights computed in fp32 (activations
    rounded to bf16 between modules, as the native kernels do), and every module gets its forward back."""
    model = make_tiny(family).to(torch.bfloat16)
    ids = torch.randint(0, model.config.vocab_size, (2, 12), generator=torch.Generator().manual_seed(0))
    params = dict(model.named_parameters())
    native = _loss(model, ids)
    native.backward()
    native_grads = {n: p.grad.clone() for n, p in params.items()}
    model.zero_grad(set_to_none=True)
    with fp32_compute(model, force=True) as switched:
        assert switched == len(half_linears(model)) > 0
        ours = _loss(model, ids)
        ours.backward()
    assert all("forward" not in m.__dict__ for m in model.modules())
    assert abs(ours.item() - native.item()) < 2e-2 * abs(native.item())
    for name, p in params.items():
        assert p.grad.dtype == torch.bfloat16, name
        ref = native_grads[name].float()
        err = (p.grad.float() - ref).norm() / ref.norm().clamp(min=1e-12)
        assert err < 5e-2, (name, err.item())


def test_fp32_compute_leaves_fp32_models_and_lora_alone(make_tiny):
    model = make_tiny("llama")
    with fp32_compute(model, force=True) as switched:
        assert switched == 0
        assert all("forward" not in m.__dict__ for m in model.modules())


def test_backward_keeps_no_fp32_copy_of_the_weights(make_tiny):
    """What autograd saves for backward is the bf16 weight itself (no upcast copy lives until backward)."""
    model = make_tiny("llama").to(torch.bfloat16)
    ids = torch.randint(0, model.config.vocab_size, (1, 8), generator=torch.Generator().manual_seed(1))
    weights = {p.data_ptr() for p in model.parameters()}
    saved: list[torch.Tensor] = []

    def pack(t):
        saved.append(t)
        return t

    with fp32_compute(model, force=True), torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        _loss(model, ids).backward()
    big = [t for t in saved if t.dtype == torch.float32 and t.dim() == 2 and t.numel() >= 32 * 32]
    assert not any(t.data_ptr() in weights for t in big)
    lin = half_linears(model)[0]
    assert not any(t.shape == lin.weight.shape and t.dtype == torch.float32 for t in saved)
