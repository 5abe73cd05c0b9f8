"""Streamed saving (offload): the weights files written from a layer sink equal `save_pretrained`'s byte
for byte (one file and sharded, tied or not), layers read back equal, and the check catches a bad file."""

from __future__ import annotations

import copy

import pytest
import torch

from llmprune.errors import LlmpruneError
from llmprune.surgery.stream import LayerSink, verify_weights, write_weights


def _streamed(model, tmp_path) -> LayerSink:
    """A copy of `model` whose decoder layers are in a sink and on the meta device."""
    sink = LayerSink(tmp_path / "scratch")
    for i, layer in enumerate(model.model.layers):
        sink.write(f"model.layers.{i}.", layer)
        layer.to_empty(device="meta")
    return sink


@pytest.mark.parametrize(("tied", "shard"), [(False, None), (True, None), (False, 20_000), (True, 20_000)])
def test_weights_files_equal_save_pretrained(make_tiny, tmp_path, tied, shard):
    model = make_tiny("llama", heads=4, kv_heads=2, tie_word_embeddings=tied)
    ref = tmp_path / "ref"
    model.save_pretrained(ref, **({"max_shard_size": shard} if shard else {}))
    streamed = copy.deepcopy(model)
    sink = _streamed(streamed, tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    files = write_weights(out, streamed, sink, max_shard_size=shard)
    assert (len(files) > 1) == (shard is not None)
    written = sorted(p.name for p in out.iterdir())
    assert written == sorted(p.name for p in ref.iterdir() if p.name.startswith("model"))
    for name in written:
        assert (out / name).read_bytes() == (ref / name).read_bytes(), name
    verify_weights(out, streamed, sink, files)
    sink.close()
    assert not sink.scratch.exists()


def test_read_back_restores_the_layers(make_tiny, tmp_path):
    model = make_tiny("llama", heads=4, kv_heads=2)
    ids = torch.randint(0, 128, (2, 10), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        ref = model(ids).logits
    sink = _streamed(model, tmp_path)
    sink.read_back_(model)
    with torch.no_grad():
        assert torch.equal(model(ids).logits, ref)


def test_verify_catches_a_changed_tensor(make_tiny, tmp_path):
    model = make_tiny("llama", heads=4, kv_heads=2)
    sink = _streamed(model, tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    files = write_weights(out, model, sink)
    with torch.no_grad():
        model.model.norm.weight.add_(1.0)
    with pytest.raises(LlmpruneError, match="different model.norm.weight"):
        verify_weights(out, model, sink, files)
