"""Calibration passes that gather what importance needs: gradients, Fisher diagonals, activation norms.

Gradients are taken in the model's dtype; the loss and every accumulation are fp32. Memory stays lean
(`reduce_gradients`): a parameter's gradient is handed to a reduction (e.g. per-unit Taylor scores) as
soon as it is final, in the last backward pass, and freed right there; no fp32 copy of every gradient is
kept. The Fisher diagonal (for `element2`, (1/n) sum_s (g_s * w)^2) is accumulated by tensor hooks from
per-sample gradients into one fp32 buffer per scored parameter, freed with its gradient.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from llmprune.activations import SquaredNorms, record_inputs
from llmprune.models.halfcpu import fp32_compute

# reduce(name, gradient of the mean loss in fp32, Fisher diagonal or None), called once per parameter
Reduce = Callable[[str, torch.Tensor, "torch.Tensor | None"], None]


def lm_loss(model: nn.Module, batch: torch.Tensor) -> torch.Tensor:
    """Mean next-token NLL in fp32."""
    logits = model(input_ids=batch, use_cache=False).logits[:, :-1].float()
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), batch[:, 1:].reshape(-1))


@contextlib.contextmanager
def checkpoint_layers(model: nn.Module) -> Iterator[None]:
    """Within the block, each decoder layer of `model` keeps only its inputs for backward and runs its
    forward again when the backward pass reaches it (non-reentrant `torch.utils.checkpoint`): the
    activations held are the layers' inputs plus one layer's, for one more forward pass. Without gradients
    (no_grad) the layers run as usual. Each layer gets its own forward back on exit."""
    from torch.utils.checkpoint import checkpoint

    from llmprune.arch import describe

    layout = describe(model)
    saved = []
    for i in range(layout.num_layers):
        layer = model.get_submodule(layout.layer(i))
        inner = layer.forward

        def run(*args, _inner=inner, **kwargs):
            if not torch.is_grad_enabled():
                return _inner(*args, **kwargs)
            return checkpoint(_inner, *args, use_reentrant=False, **kwargs)

        saved.append((layer, layer.__dict__.get("forward")))
        layer.forward = run
    try:
        yield
    finally:
        for layer, before in reversed(saved):
            if before is None:
                layer.__dict__.pop("forward", None)
            else:
                layer.forward = before


def reduce_gradients(
    model: nn.Module,
    batches: torch.Tensor,
    params: dict[str, nn.Parameter],
    reduce: Reduce,
    *,
    fisher: bool = False,
    micro_batch: int = 1,
    checkpoint: bool = True,
    progress: bool = True,
) -> None:
    """Call `reduce(name, grad, fisher)` for each of `params` (name -> parameter) with the fp32 gradient of
    the mean calibration loss and, with `fisher`, the per-sample Fisher diagonal (1/n) sum_s (g_s * w)^2
    (samples then go one at a time). Gradients accumulate in `.grad` over micro-batches; in the last
    backward pass each one is reduced as soon as it is complete and freed, so the peak is the weights, one
    set of gradients of the earlier micro-batches, and the activations: with `checkpoint` (default) only
    the decoder layers' inputs and one layer's activations (`checkpoint_layers`), for one more forward."""
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    requires = {n: p.requires_grad for n, p in model.named_parameters()}
    wanted = set(params)
    for n, p in model.named_parameters():
        p.requires_grad_(n in wanted)
        p.grad = None
    n = batches.shape[0]
    micro_batch = 1 if fisher else micro_batch
    fishers: dict[str, torch.Tensor] = {}
    pending = set(params)
    last = False

    def finish(name: str, p: nn.Parameter) -> None:
        grad = p.grad.float() if p.grad is not None else torch.zeros_like(p, dtype=torch.float32)
        f = fishers.pop(name, None)
        if f is not None:  # the hooks saw (g_s/n * w)^2; the Fisher of the mean loss is (1/n) sum_s (g_s * w)^2
            f.mul_(n)
        reduce(name, grad, f)
        p.grad = None
        pending.discard(name)

    handles = []
    for name, p in params.items():
        if fisher:
            fishers[name] = torch.zeros_like(p, dtype=torch.float32)

            def per_sample(grad, name=name, p=p):
                fishers[name].add_((grad.float() * p.detach().float()).pow_(2))
                return grad

            handles.append(p.register_hook(per_sample))

        def accumulated(p, name=name):
            if last:
                finish(name, p)

        handles.append(p.register_post_accumulate_grad_hook(accumulated))
    bar = tqdm(total=n, desc="gradients", unit="sample", disable=not progress, leave=False)
    try:
        with fp32_compute(model), checkpoint_layers(model) if checkpoint else contextlib.nullcontext():
            for i in range(0, n, micro_batch):
                mb = batches[i : i + micro_batch].to(device)
                last = i + micro_batch >= n
                loss = lm_loss(model, mb) * (mb.shape[0] / n)  # gradient of the mean over all samples
                loss.backward()
                bar.update(mb.shape[0])
        for name in sorted(pending):  # parameters the loss does not reach: zero gradient
            finish(name, params[name])
    finally:
        bar.close()
        for h in handles:
            h.remove()
        for n_, p in model.named_parameters():
            p.grad = None
            p.requires_grad_(requires[n_])
        model.train(was_training)


def collect_gradients(
    model: nn.Module,
    batches: torch.Tensor,
    params: dict[str, nn.Parameter],
    *,
    fisher: bool = False,
    micro_batch: int = 1,
    checkpoint: bool = True,
    progress: bool = True,
) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """`reduce_gradients` keeping every gradient (and Fisher diagonal) whole: (grads, fishers) as fp32
    tensors on the params' device. For inspection and tests; scoring uses the lean reduction."""
    grads: dict[str, torch.Tensor] = {}
    fishers: dict[str, torch.Tensor] = {}

    def keep(name: str, grad: torch.Tensor, f: torch.Tensor | None) -> None:
        grads[name] = grad  # `reduce_gradients` drops `.grad` but this tensor lives on
        if f is not None:
            fishers[name] = f

    reduce_gradients(
        model, batches, params, keep, fisher=fisher, micro_batch=micro_batch, checkpoint=checkpoint, progress=progress
    )
    return grads, fishers


@torch.no_grad()
def collect_input_norms(
    model: nn.Module, batches: torch.Tensor, modules: list[str], *, micro_batch: int = 4, progress: bool = True
) -> dict[str, torch.Tensor]:
    """L2 norm over all calibration tokens of each input feature of the named Linear modules (Wanda's ||X_j||)."""
    device = next(model.parameters()).device
    stats = {name: SquaredNorms(model.get_submodule(name).in_features, device) for name in modules}
    with record_inputs(model, stats), fp32_compute(model):
        for i in tqdm(range(0, batches.shape[0], micro_batch), desc="activations", disable=not progress, leave=False):
            model(input_ids=batches[i : i + micro_batch].to(device), use_cache=False)
    return {k: v.norms() for k, v in stats.items()}
