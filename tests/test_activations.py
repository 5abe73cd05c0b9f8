"""Calibration activations: the accumulators against hand-computed statistics, and hooks that always go away."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from llmprune.activations import Gram, RowNorms, SquaredNorms, capture_layer_inputs, layer_output, record_inputs


class Two(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Linear(4, 3)
        self.b = nn.Linear(3, 2)

    def forward(self, x):
        return self.b(self.a(x))


def test_statistics_of_the_inputs():
    torch.manual_seed(0)
    net = Two()
    xs = [torch.randn(2, 5, 4), torch.randn(1, 5, 4)]
    keep = torch.tensor([True, False, True])
    stats = {"a": SquaredNorms(4), "b": Gram(3, keep)}
    rows = {"a": RowNorms(4)}
    with torch.no_grad(), record_inputs(net, stats), record_inputs(net, rows):
        for x in xs:
            net(x)
    flat = torch.cat([x.reshape(-1, 4) for x in xs])
    torch.testing.assert_close(stats["a"].norms(), flat.pow(2).sum(0).sqrt())
    hidden = net.a(flat).detach()
    torch.testing.assert_close(stats["b"].matrix, hidden.T @ hidden[:, [0, 2]])
    # Wanda's running mean over 3 samples of sum_tokens x^2
    torch.testing.assert_close(rows["a"].scaler_row, flat.pow(2).sum(0) / 3)
    assert rows["a"].nsamples == 3


def test_hooks_are_removed_even_on_errors():
    net = Two()
    with pytest.raises(RuntimeError), record_inputs(net, {"a": SquaredNorms(4)}):
        net(torch.zeros(1, 5))  # wrong width
    assert not net.a._forward_pre_hooks


def test_capture_layer_inputs_stops_at_the_first_layer(make_tiny):
    model = make_tiny("llama", heads=4, kv_heads=2)
    batches = torch.randint(0, 128, (3, 7), generator=torch.Generator().manual_seed(0))
    captured = capture_layer_inputs(model, batches, micro_batch=2)
    assert [h.shape for h, _ in captured] == [(2, 7, 32), (1, 7, 32)]
    hidden, kwargs = captured[0]
    torch.testing.assert_close(hidden, model.model.embed_tokens(batches[:2]))
    with torch.no_grad():
        out = layer_output(model.model.layers[0](hidden, **kwargs))
    assert out.shape == hidden.shape
