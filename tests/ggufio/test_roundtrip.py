"""Acceptance 3 of #18: export -> gguf.GGUFReader -> llmprune's loader gives the source folder's logits (f32),
uniform and non-uniform, with and without biases; no llama.cpp needed."""

from __future__ import annotations

import gguf
import numpy as np
import pytest
import torch

from llmprune.ggufio.tensors import permute_rows, unpermute_rows
from llmprune.ggufio.writer import export_gguf
from llmprune.models.load import load_model, model_type_of

# source -> (GGUF architecture, biases in the file)
SOURCES = {
    "nonuniform": ("deci", set()),
    "nonuniform-bias": ("deci", {"attn_output", "ffn_down"}),
    "uniform": ("llama", set()),
    "uniform-bias": ("llama", {"attn_output", "ffn_down"}),
    "dense-bias": ("llama", {"attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"}),
    "tied": ("llama", set()),
    "nonuniform-allbias": ("deci", {"attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"}),
    "qwen2": ("llama", {"attn_q", "attn_k", "attn_v"}),
    "qwen2-nonuniform": ("deci", {"attn_q", "attn_k", "attn_v"}),
}


def _logits(spec: str, ids: torch.Tensor) -> torch.Tensor:
    model, _ = load_model(spec, dtype="float32", device="cpu")
    with torch.no_grad():
        return model(input_ids=ids).logits


@pytest.mark.parametrize("name", list(SOURCES))
def test_f32_round_trip_gives_the_same_logits(name, make_source, tmp_path):
    src = make_source(name)
    out = tmp_path / f"{name}.gguf"
    done = export_gguf(str(src), out)
    arch, biases = SOURCES[name]
    reader = gguf.GGUFReader(out)
    fields = {k: f.contents() for k, f in reader.fields.items()}
    assert done.arch == fields["general.architecture"] == arch
    names = {t.name for t in reader.tensors}
    assert {n.split(".")[2] for n in names if n.endswith(".bias")} == biases
    assert ("output.weight" in names) == (name != "tied")
    assert all(t.tensor_type == gguf.GGMLQuantizationType.F32 for t in reader.tensors)
    model, _ = load_model(str(src), dtype="float32", device="cpu")
    shapes = [
        (a.q_proj.out_features // 8, a.k_proj.out_features // 8)
        for a in (layer.self_attn for layer in model.model.layers)
    ]
    heads = fields[f"{arch}.attention.head_count"]
    if arch == "deci":  # per-layer arrays, as llama.cpp's get_key_or_arr reads them
        mlp = [layer.mlp.gate_proj.out_features for layer in model.model.layers]
        assert heads == [h for h, _ in shapes] and fields["deci.attention.head_count_kv"] == [k for _, k in shapes]
        assert fields["deci.feed_forward_length"] == mlp
    else:
        assert heads == shapes[0][0]
    ids = torch.randint(0, 128, (2, 24), generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(_logits(str(out), ids), _logits(str(src), ids), rtol=0, atol=0)
    assert model_type_of(str(out)) == ("qwen2" if name.startswith("qwen2") else "llama")


@pytest.mark.parametrize(("outtype", "atol"), [("f16", 2e-3), ("bf16", 2e-2), ("q8_0", 2e-2)])
def test_smaller_outtypes_are_close(outtype, atol, make_source, tmp_path):
    src = make_source("nonuniform-bias")
    out = tmp_path / f"{outtype}.gguf"
    export_gguf(str(src), out, outtype=outtype)
    kinds = {t.name: t.tensor_type.name for t in gguf.GGUFReader(out).tensors}
    assert kinds["blk.0.attn_q.weight"] == outtype.upper()
    assert kinds["blk.0.attn_norm.weight"] == kinds["blk.0.ffn_down.bias"] == "F32"  # 1-D tensors stay F32
    ids = torch.randint(0, 128, (1, 16), generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(_logits(str(out), ids), _logits(str(src), ids), rtol=0, atol=atol)


def test_permutation_is_llama_cpp_converters():
    """`permute_rows` is convert_hf_to_gguf.py's LlamaModel.permute (numpy), and `unpermute_rows` undoes it."""

    def reference(w: np.ndarray, n_head: int) -> np.ndarray:
        return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)

    w = torch.randn(3 * 8, 5)
    for t in (w, w[:, 0]):  # a weight and a bias
        p = permute_rows(t, 3)
        np.testing.assert_array_equal(p.numpy(), reference(t.numpy(), 3))
        assert not torch.equal(p, t)
        torch.testing.assert_close(unpermute_rows(p, 3), t, rtol=0, atol=0)


def test_tokenizer_round_trips(make_source, tmp_path):
    src = make_source("nonuniform")
    out = tmp_path / "tok.gguf"
    done = export_gguf(str(src), out)
    assert done.tokenizer == "built from tokenizer.json (none)"  # word-level: llama.cpp gets no vocabulary
    fields = gguf.GGUFReader(out).fields
    assert fields["tokenizer.ggml.model"].contents() == "none"
    _, tok = load_model(str(out), device="cpu")
    _, ref = load_model(str(src), device="cpu")
    assert tok("t5 t77 t3")["input_ids"] == ref("t5 t77 t3")["input_ids"]


def test_bpe_tokenizer_is_built_for_llama_cpp(tmp_path):
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    from llmprune.ggufio.writer import write_gguf
    from tests.tiny import tiny_model

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(vocab_size=120, special_tokens=["<s>", "</s>"], show_progress=False)
    bpe.train_from_iterator(["the cat sat on the mat", "a dog ate the hat"] * 20, trainer)
    tok = PreTrainedTokenizerFast(tokenizer_object=bpe, bos_token="<s>", eos_token="</s>")
    out = tmp_path / "bpe.gguf"
    assert write_gguf(tiny_model(), tok, out, outtype="f32").tokenizer == "built from tokenizer.json (gpt2)"
    fields = {k: f.contents() for k, f in gguf.GGUFReader(out).fields.items()}
    assert fields["tokenizer.ggml.model"] == "gpt2" and len(fields["tokenizer.ggml.tokens"]) == 128
    vocab = tok.get_vocab()
    assert all(fields["tokenizer.ggml.tokens"][i] == t for t, i in vocab.items())
    assert fields["tokenizer.ggml.merges"] and fields["tokenizer.ggml.eos_token_id"] == vocab["</s>"]
    assert fields["tokenizer.ggml.token_type"][vocab["</s>"]] == gguf.TokenType.CONTROL


def test_source_gguf_follows_the_base_model(make_source, tmp_path):
    from llmprune.ggufio.source import source_gguf
    from tests.ggufio.conftest import pruned_folder

    first = tmp_path / "first.gguf"
    export_gguf(str(make_source("uniform")), first)
    child = pruned_folder(tmp_path / "child", "nonuniform", base_model=str(first))
    assert source_gguf(str(first)) == first
    assert source_gguf(str(child)) == first
    assert source_gguf(str(make_source("dense-bias"))) is None
