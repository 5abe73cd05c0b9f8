"""Calibration activations: statistics of Linear inputs gathered by hooks, and decoder-layer inputs.

One mechanism for every step that looks at activations (importance, reconstruction, Wanda):

- accumulators of one Linear's inputs x (tokens x features), each with `add(x)`:
  `SquaredNorms` (sum over tokens of x_j^2; importance's ||X_j||), `RowNorms` (Wanda's running mean over
  samples, the reference's `scaler_row`), `Gram` (X^T X, or X^T X_K for kept columns K; least squares),
  `Moments` (X^T X, column sums and cross-products with target outputs; the sequential engine);
- `record_inputs(model, stats)`: a forward pre-hook per named module feeds its accumulator while the
  block runs, and is removed on exit (also on errors); `record_outputs(model, names)` keeps what the
  named modules return, one tensor per call;
- `capture_layer_inputs(model, batches)`: what decoder layer 0 receives (hidden states and the call's
  keyword arguments: masks, position embeddings), for layer-by-layer processing.

Every accumulator works in fp32 whatever the model's dtype.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import Protocol

import torch
from torch import nn

from llmprune.arch import decoder_layers


class InputStat(Protocol):
    def add(self, x: torch.Tensor) -> None: ...


class SquaredNorms:
    """Sum over all tokens of x_j^2 per input feature j; `norms()` is the L2 norm ||X_j||_2."""

    def __init__(self, features: int, device: torch.device | None = None) -> None:
        self.sum = torch.zeros(features, dtype=torch.float32, device=device)

    def add(self, x: torch.Tensor) -> None:
        self.sum.add_(x.float().reshape(-1, x.shape[-1]).pow(2).sum(0))

    def norms(self) -> torch.Tensor:
        return self.sum.sqrt()


class RowNorms:
    """Running mean over samples of sum_tokens x_j^2 per input channel j (Wanda's `scaler_row`)."""

    def __init__(self, features: int, device: torch.device | None = None) -> None:
        self.scaler_row = torch.zeros(features, dtype=torch.float32, device=device)
        self.nsamples = 0

    def add(self, x: torch.Tensor) -> None:
        """Add a batch of inputs of shape (batch, tokens, features) or (tokens, features)."""
        if x.dim() == 2:
            x = x.unsqueeze(0)
        batch = x.shape[0]
        x = x.reshape(-1, x.shape[-1]).float()
        self.scaler_row *= self.nsamples / (self.nsamples + batch)
        self.nsamples += batch
        self.scaler_row += x.pow(2).sum(dim=0) / self.nsamples


class Gram:
    """X^T X of the inputs (features x features), or X^T X_K with only the columns `keep` (bool mask)."""

    def __init__(self, features: int, keep: torch.Tensor | None = None, device: torch.device | None = None) -> None:
        self.cols = None if keep is None else keep.nonzero().flatten().to(device)
        width = features if keep is None else int(keep.sum())
        self.matrix = torch.zeros(features, width, dtype=torch.float32, device=device)

    def add(self, x: torch.Tensor) -> None:
        x = x.reshape(-1, x.shape[-1]).float()
        self.matrix.addmm_(x.T, x if self.cols is None else x.index_select(1, self.cols))


class Moments:
    """X^T X, the column sums of X and the number of rows: the Gram matrix of [X 1] (`llmprune.prune.obs`),
    and, when `targets` are given (one tensor per call, in call order), the cross-products [X 1]^T Y with
    them (float64)."""

    def __init__(self, features: int, targets: list[torch.Tensor] | None = None, device=None) -> None:
        self.xtx = torch.zeros(features, features, dtype=torch.float64, device=device)
        self.xsum = torch.zeros(features, dtype=torch.float64, device=device)
        self.count = 0
        self.targets = targets
        self.cross: torch.Tensor | None = None
        self._calls = 0

    def add(self, x: torch.Tensor) -> None:
        x = x.reshape(-1, x.shape[-1]).double()
        self.xtx.addmm_(x.T, x)
        self.xsum.add_(x.sum(0))
        self.count += x.shape[0]
        if self.targets is not None:
            y = self.targets[self._calls].to(x.device).reshape(x.shape[0], -1).double()
            xy = torch.cat([x.T @ y, y.sum(0, keepdim=True)])  # [X 1]^T Y
            self.cross = xy if self.cross is None else self.cross.add_(xy)
        self._calls += 1


@contextlib.contextmanager
def record_inputs(model: nn.Module, stats: Mapping[str, InputStat]) -> Iterator[Mapping[str, InputStat]]:
    """While the block runs, every forward of module `name` adds its input to `stats[name]`."""
    handles = []
    try:
        for name, stat in stats.items():
            hook = lambda _m, args, s=stat: s.add(args[0].detach())  # noqa: E731
            handles.append(model.get_submodule(name).register_forward_pre_hook(hook))
        yield stats
    finally:
        for h in handles:
            h.remove()


@contextlib.contextmanager
def record_outputs(model: nn.Module, names: list[str], *, device="cpu") -> Iterator[dict[str, list[torch.Tensor]]]:
    """While the block runs, every forward of module `name` appends its output (moved to `device`)."""
    outputs: dict[str, list[torch.Tensor]] = {name: [] for name in names}
    handles = []
    try:
        for name in names:
            hook = lambda _m, _args, out, store=outputs[name]: store.append(out.detach().to(device))  # noqa: E731
            handles.append(model.get_submodule(name).register_forward_hook(hook))
        yield outputs
    finally:
        for h in handles:
            h.remove()


class _Captured(Exception):
    """Raised by the layer-0 hook to stop the forward pass once the layer's inputs are stored."""


LayerInputs = list[tuple[torch.Tensor, dict]]


@torch.no_grad()
def capture_layer_inputs(model: nn.Module, batches: torch.Tensor, *, micro_batch: int = 8) -> LayerInputs:
    """[(hidden states, call kwargs)] that decoder layer 0 receives, one entry per micro-batch of windows."""
    device = next(model.parameters()).device
    first = decoder_layers(model)[0]
    captured: LayerInputs = []

    def hook(_module, args, kwargs):
        kwargs = dict(kwargs)
        hidden = args[0] if args else kwargs.pop("hidden_states")
        captured.append((hidden.detach(), kwargs))
        raise _Captured

    handle = first.register_forward_pre_hook(hook, with_kwargs=True)
    try:
        for i in range(0, batches.shape[0], micro_batch):
            try:
                model(input_ids=batches[i : i + micro_batch].to(device), use_cache=False)
            except _Captured:
                pass
    finally:
        handle.remove()
    return captured


def layer_output(out) -> torch.Tensor:
    """The hidden states a decoder layer returns (a tensor, or the first item of a tuple)."""
    return out[0] if isinstance(out, (tuple, list)) else out
