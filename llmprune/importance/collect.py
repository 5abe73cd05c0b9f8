"""Calibration passes that gather what importance needs: gradients, Fisher diagonals, activation norms.

Gradients are taken in the model's dtype; the loss and every accumulation are fp32. The Fisher diagonal
(for `element2`, (1/n) sum_s (g_s * w)^2) is accumulated by tensor hooks from per-sample gradients, so memory stays at the weights,
one set of gradients and one fp32 buffer per scored parameter.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from llmprune.activations import SquaredNorms, record_inputs


def lm_loss(model: nn.Module, batch: torch.Tensor) -> torch.Tensor:
    """Mean next-token NLL in fp32."""
    logits = model(input_ids=batch, use_cache=False).logits[:, :-1].float()
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), batch[:, 1:].reshape(-1))


def collect_gradients(
    model: nn.Module,
    batches: torch.Tensor,
    params: dict[str, nn.Parameter],
    *,
    fisher: bool = False,
    micro_batch: int = 1,
    progress: bool = True,
) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """Gradient of the mean calibration loss for `params` (name -> parameter), and optionally the
    per-sample Fisher diagonal (1/n) sum_s (g_s * w)^2 (the Fisher estimate of the mean loss's Hessian
    diagonal, times w^2). Returns (grads, fishers) as fp32 tensors on the params' device.
    With `fisher`, samples are processed one at a time (per-sample gradients)."""
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    requires = {n: p.requires_grad for n, p in model.named_parameters()}
    wanted = set(params)
    for n, p in model.named_parameters():
        p.requires_grad_(n in wanted)
        p.grad = None
    fishers: dict[str, torch.Tensor] = {}
    handles = []
    if fisher:
        micro_batch = 1
        for name, p in params.items():
            fishers[name] = torch.zeros_like(p, dtype=torch.float32)

            def hook(grad, name=name, p=p):
                fishers[name].add_((grad.float() * p.detach().float()).pow_(2))
                return grad

            handles.append(p.register_hook(hook))
    n = batches.shape[0]
    bar = tqdm(total=n, desc="gradients", unit="sample", disable=not progress, leave=False)
    try:
        for i in range(0, n, micro_batch):
            mb = batches[i : i + micro_batch].to(device)
            loss = lm_loss(model, mb) * (mb.shape[0] / n)  # gradient of the mean over all samples
            loss.backward()
            bar.update(mb.shape[0])
    finally:
        bar.close()
        for h in handles:
            h.remove()
    if fisher:  # hooks saw (g_s/n * w)^2; the Fisher of the mean loss is (1/n) sum_s (g_s * w)^2
        for f in fishers.values():
            f.mul_(n)
    grads = {
        name: (p.grad.float() if p.grad is not None else torch.zeros_like(p, dtype=torch.float32))
        for name, p in params.items()
    }
    for n_, p in model.named_parameters():
        p.grad = None
        p.requires_grad_(requires[n_])
    model.train(was_training)
    return grads, fishers


@torch.no_grad()
def collect_input_norms(
    model: nn.Module, batches: torch.Tensor, modules: list[str], *, micro_batch: int = 4, progress: bool = True
) -> dict[str, torch.Tensor]:
    """L2 norm over all calibration tokens of each input feature of the named Linear modules (Wanda's ||X_j||)."""
    device = next(model.parameters()).device
    stats = {name: SquaredNorms(model.get_submodule(name).in_features, device) for name in modules}
    with record_inputs(model, stats):
        for i in tqdm(range(0, batches.shape[0], micro_batch), desc="activations", disable=not progress, leave=False):
            model(input_ids=batches[i : i + micro_batch].to(device), use_cache=False)
    return {k: v.norms() for k, v in stats.items()}
