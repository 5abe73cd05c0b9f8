"""Every MODEL kind loads through one function; bad MODEL specs fail clearly."""

from __future__ import annotations

import pytest
import torch

from llmprune.errors import LlmpruneError
from llmprune.models import count_params, load_model
from llmprune.models.load import resolve_model_source

IDS = torch.tensor([[1, 5, 9, 3, 7, 2]])


def _logits(model):
    with torch.no_grad():
        return model(input_ids=IDS).logits


def _same(model, ref):
    """Identical weights, and the same logits (the reload may pick sdpa instead of eager attention)."""
    a, b = model.state_dict(), ref.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    torch.testing.assert_close(_logits(model), _logits(ref), rtol=1e-5, atol=1e-6)


def _save_tiny(make_tiny, path, **kw):
    from tests.tiny import save_tiny

    return save_tiny(path, "llama", **kw)


def test_local_hf_folder_roundtrip(tmp_path, make_tiny):
    ref = _save_tiny(make_tiny, tmp_path / "tiny", heads=4, kv_heads=2)
    model, tok = load_model(str(tmp_path / "tiny"), device="cpu")
    assert model.dtype == torch.float32  # fp32 default on CPU
    _same(model, ref)
    assert tok("t1 t2")["input_ids"] == [1, 2]


def test_dtype_option(tmp_path, make_tiny):
    _save_tiny(make_tiny, tmp_path / "tiny")
    model, _ = load_model(str(tmp_path / "tiny"), dtype="bfloat16", device="cpu")
    assert model.dtype == torch.bfloat16


def test_hub_id_resolves_through_the_hub_cache(tmp_path, make_tiny, monkeypatch):
    """A hub id goes through huggingface_hub; offline it is served from the standard hub cache."""
    snap = tmp_path / "hub" / "models--llmprune-test--tiny" / "snapshots" / "0123456789abcdef"
    ref = _save_tiny(make_tiny, snap)
    (tmp_path / "hub" / "models--llmprune-test--tiny" / "refs").mkdir()
    (tmp_path / "hub" / "models--llmprune-test--tiny" / "refs" / "main").write_text("0123456789abcdef")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    import huggingface_hub.constants as c

    monkeypatch.setattr(c, "HF_HUB_CACHE", str(tmp_path / "hub"))
    assert resolve_model_source("llmprune-test/tiny") == ("hub", "llmprune-test/tiny")
    model, _ = load_model("llmprune-test/tiny", device="cpu")
    _same(model, ref)


def test_hub_id_unavailable_is_a_clear_error():
    with pytest.raises(LlmpruneError, match="could not load model 'no-such-org/no-such-model'"):
        load_model("no-such-org/no-such-model", device="cpu")


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (
            "smollm9-1t",
            r"unknown model alias 'smollm9-1t'; known aliases: gemma3-270m, qwen2\.5-0\.5b, smollm2-135m",
        ),
        ("./missing/folder", "model path not found"),
        ("/definitely/not/here.gguf", "model path not found"),
        ("", "MODEL is empty"),
    ],
)
def test_bad_model_specs(spec, message):
    with pytest.raises(LlmpruneError, match=message):
        resolve_model_source(spec)


def test_folder_without_config_and_non_gguf_file(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(LlmpruneError, match="without config.json"):
        resolve_model_source(str(tmp_path / "empty"))
    (tmp_path / "w.bin").write_bytes(b"x")
    with pytest.raises(LlmpruneError, match="not a .gguf"):
        resolve_model_source(str(tmp_path / "w.bin"))


def test_only_safetensors_are_loaded(tmp_path, make_tiny):
    """A folder with only a pickled checkpoint is refused, never unpickled."""
    model = make_tiny("llama")
    (tmp_path / "pt").mkdir()
    model.config.save_pretrained(tmp_path / "pt")
    torch.save(model.state_dict(), tmp_path / "pt" / "pytorch_model.bin")
    with pytest.raises(LlmpruneError, match="safetensors"):
        load_model(str(tmp_path / "pt"), device="cpu")


def test_count_params_counts_tied_embedding_once(make_tiny):
    tied = make_tiny("llama", tie_word_embeddings=True)
    untied = make_tiny("llama", tie_word_embeddings=False)
    emb = tied.model.embed_tokens.weight.numel()
    assert tied.lm_head.weight is tied.model.embed_tokens.weight
    assert count_params(untied) - count_params(tied) == emb
    assert count_params(untied) == sum(p.numel() for p in untied.parameters())


@pytest.mark.slow
def test_smollm2_alias_and_gguf_give_identical_models(smollm2):
    """The alias folder (converted once) and the original GGUF file load to the same weights."""
    from llmprune.models.aliases import alias_gguf

    model, tok = smollm2
    assert count_params(model) == 134_515_008
    assert model.config.num_key_value_heads == 3 and model.config.tie_word_embeddings
    gguf_model, gguf_tok = load_model(str(alias_gguf("smollm2-135m")), device="cpu")
    ids = torch.tensor([tok("The capital of France is")["input_ids"]])
    assert gguf_tok("The capital of France is")["input_ids"] == ids[0].tolist()
    with torch.no_grad():
        torch.testing.assert_close(gguf_model(input_ids=ids).logits, model(input_ids=ids).logits, rtol=0, atol=0)


def test_dtype_auto_keeps_a_bf16_checkpoint_in_bf16_on_the_cpu(tiny_dir):
    from llmprune.models import load_model
    from llmprune.models.load import stored_dtype

    fp32 = tiny_dir()
    bf16 = tiny_dir()
    model, _ = load_model(str(fp32), device="cpu")
    model.to(torch.bfloat16).save_pretrained(bf16)
    assert stored_dtype(str(fp32)) == torch.float32 and stored_dtype(str(bf16)) == torch.bfloat16
    assert next(load_model(str(bf16), device="cpu")[0].parameters()).dtype == torch.bfloat16
    assert next(load_model(str(fp32), device="cpu")[0].parameters()).dtype == torch.float32
    assert next(load_model(str(bf16), dtype="float32", device="cpu")[0].parameters()).dtype == torch.float32
