"""save_pruned -> load_pruned round trips (logits, generation), stock loading, and refusals."""

from __future__ import annotations

import json
import random

import pytest
import torch

from llmprune.arch import describe
from llmprune.errors import LlmpruneError
from llmprune.prune.plan import BaseShape, LayerPlan, PrunePlan, stock_loadable
from llmprune.runfolder import MANIFEST
from llmprune.surgery import load_pruned, prune_, save_pruned
from tests.surgery.plans import random_plan

IDS = torch.tensor([[5, 17, 99, 3, 64, 2, 120, 7, 8, 31]])
GEN = dict(max_new_tokens=8, do_sample=False, pad_token_id=0)

ROUND_TRIPS = [  # (family, kwargs, scope)
    ("llama", dict(heads=4), "block"),
    ("llama", dict(heads=6, kv_heads=2, tie_word_embeddings=True, attention_bias=True, mlp_bias=True), "mix"),
    ("mistral", dict(heads=8, kv_heads=2), "layer"),
    ("qwen2", dict(heads=4, kv_heads=2, tie_word_embeddings=True), "channel"),
    ("qwen2", dict(heads=4, kv_heads=2), "mix"),
    ("qwen3", dict(heads=4, kv_heads=2), "mix"),  # head norms keep their eps: manifest and config say so
    ("gemma2", dict(heads=4, kv_heads=2, tie_word_embeddings=True), "channel"),  # scaled, tied embedding
    ("gemma3_text", dict(heads=6, kv_heads=2), "block"),
    ("phi3", dict(heads=4, kv_heads=2), "block"),  # fused projections, the same heads in every layer
    ("olmo2", dict(heads=4, kv_heads=2), "uniform"),  # q/k norms rescaled: per-layer eps
]


def _pruned(make_tiny, family, kw, scope, seed=0):
    model = make_tiny(family, **kw)
    plan = random_plan(BaseShape.from_config(model.config), random.Random(f"io-{family}-{scope}-{seed}"), scope)
    return prune_(model, plan), plan


@pytest.mark.parametrize("family,kw,scope", ROUND_TRIPS)
def test_save_load_same_logits_and_generation(make_tiny, tmp_path, family, kw, scope):
    pruned, plan = _pruned(make_tiny, family, kw, scope)
    out = save_pruned(pruned, plan, tmp_path / "out", extra={"note": "test"})
    loaded = load_pruned(out, attn="eager")
    with torch.no_grad():
        torch.testing.assert_close(loaded(IDS).logits, pruned(IDS).logits, atol=1e-5, rtol=0)
    assert torch.equal(loaded.generate(IDS, **GEN), pruned.generate(IDS, **GEN))
    manifest = json.loads((out / MANIFEST).read_text())
    assert [w["num_attention_heads"] for w in manifest["layers"]] == [s.heads for s in describe(pruned).layers]
    assert manifest["extra"] == {"note": "test"} and manifest["hidden_size"] == pruned.config.hidden_size
    assert PrunePlan.load(out / "plan.json") == plan
    assert manifest["stock_loadable"] == stock_loadable(plan).ok
    if pruned.config.tie_word_embeddings:
        assert loaded.lm_head.weight is loaded.model.embed_tokens.weight
    if not manifest["stock_loadable"]:  # the folder's modeling_llmprune.py, for path-only tools
        from transformers import AutoModelForCausalLM

        remote = AutoModelForCausalLM.from_pretrained(out, trust_remote_code=True, attn_implementation="eager")
        with torch.no_grad():
            torch.testing.assert_close(remote(IDS).logits, pruned(IDS).logits, atol=1e-5, rtol=0)


def _uniform_plan(base: BaseShape) -> PrunePlan:
    """GQA 6 heads / 2 KV heads -> 4 heads / 2 KV heads, 48 -> 40 MLP channels, layer 1 dropped."""
    layers = tuple(
        LayerPlan(layer=i, heads=(0, 5), mlp_channels=tuple(range(i, 48, 6)))
        if i != 1
        else LayerPlan(layer=1, drop=True)
        for i in range(base.num_layers)
    )
    return PrunePlan(base=base, layers=layers)


def test_uniform_folder_loads_with_stock_from_pretrained(make_tiny, tmp_path):
    from transformers import AutoModelForCausalLM

    model = make_tiny("llama", heads=6, kv_heads=2, hidden_size=48, tie_word_embeddings=True)
    plan = _uniform_plan(BaseShape.from_config(model.config))
    assert stock_loadable(plan).ok
    prune_(model, plan)
    assert (model.config.num_attention_heads, model.config.num_key_value_heads, model.config.intermediate_size) == (
        4,
        2,
        40,
    )
    out = save_pruned(model, plan, tmp_path / "u")
    stock = AutoModelForCausalLM.from_pretrained(out, attn_implementation="eager").eval()
    with torch.no_grad():
        torch.testing.assert_close(stock(IDS).logits, model(IDS).logits, atol=1e-5, rtol=0)
    assert torch.equal(stock.generate(IDS, **GEN), model.generate(IDS, **GEN))


def test_non_stock_folder_is_refused_by_stock_loader(make_tiny, tmp_path):
    """hidden 48 with 6 -> 5... heads: not representable; stock loading must fail, not load wrong weights."""
    from transformers import AutoModelForCausalLM

    model = make_tiny("llama", heads=4, kv_heads=4, hidden_size=32)
    base = BaseShape.from_config(model.config)
    plan = PrunePlan(base=base, layers=tuple(LayerPlan(layer=i, heads=(1,), kv_heads=(1,)) for i in range(3)))
    check = stock_loadable(plan)
    assert check.uniform and not check.ok and "not a multiple" in check.reason  # 32 % 3 != 0
    prune_(model, plan)
    out = save_pruned(model, plan, tmp_path / "n")
    with pytest.raises(Exception, match="mismatch|size"):
        AutoModelForCausalLM.from_pretrained(out)
    loaded = load_pruned(out, attn="eager")
    with torch.no_grad():
        torch.testing.assert_close(loaded(IDS).logits, model(IDS).logits, atol=1e-5, rtol=0)


def test_plan_for_another_shape_is_refused_and_model_untouched(make_tiny):
    model = make_tiny("llama", heads=4, kv_heads=2)
    other = BaseShape.from_config(make_tiny("llama", heads=4, kv_heads=2, intermediate_size=40).config)
    plan = random_plan(other, random.Random(0), "mix")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(LlmpruneError, match="intermediate_size 40 vs 48"):
        prune_(model, plan)
    after = model.state_dict()
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)


def test_pruning_twice_nonuniform_is_refused(make_tiny):
    model = make_tiny("llama", heads=4)
    base = BaseShape.from_config(model.config)
    prune_(model, PrunePlan(base=base, layers=(LayerPlan(layer=0, mlp_channels=(1, 2)),)))
    with pytest.raises(LlmpruneError, match="different widths"):
        prune_(model, PrunePlan(base=base))


def test_plan_that_empties_a_layer_is_refused(make_tiny):
    model = make_tiny("llama", heads=4, kv_heads=2)
    base = BaseShape.from_config(model.config)
    for lp in (
        LayerPlan(layer=0, heads=(0, 1, 2, 3), kv_heads=(0, 1)),
        LayerPlan(layer=2, mlp_channels=tuple(range(48))),
    ):
        with pytest.raises(LlmpruneError, match="drop the layer instead"):
            prune_(model, PrunePlan(base=base, layers=(lp,)))
    with pytest.raises(LlmpruneError, match="every decoder layer"):
        prune_(model, PrunePlan(base=base, layers=tuple(LayerPlan(layer=i, drop=True) for i in range(3))))


def test_unwritable_output_leaves_nothing(make_tiny, tmp_path):
    pruned, plan = _pruned(make_tiny, "llama", dict(heads=4, kv_heads=2), "block")
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(LlmpruneError, match="cannot write|is a file"):
        save_pruned(pruned, plan, blocker / "out")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


def test_failed_verification_leaves_nothing(make_tiny, tmp_path, monkeypatch):
    """If the folder does not reload to the same logits, nothing is written (not even a temp folder)."""
    import llmprune.surgery.io as io

    pruned, plan = _pruned(make_tiny, "qwen2", dict(heads=4, kv_heads=2), "mix")
    real = io.load_pruned

    def corrupt(*a, **k):
        m = real(*a, **k)
        with torch.no_grad():
            m.model.norm.weight.mul_(1.5)
        return m

    monkeypatch.setattr(io, "load_pruned", corrupt)
    with pytest.raises(LlmpruneError, match="different logits"):
        save_pruned(pruned, plan, tmp_path / "out")
    assert list(tmp_path.iterdir()) == []


def test_save_refuses_model_that_does_not_match_plan(make_tiny, tmp_path):
    model = make_tiny("llama", heads=4)
    plan = random_plan(BaseShape.from_config(model.config), random.Random(1), "block")
    with pytest.raises(LlmpruneError, match="call prune_"):
        save_pruned(model, plan, tmp_path / "out")  # forgot prune_
    assert list(tmp_path.iterdir()) == []


def test_load_refuses_damaged_folders(make_tiny, tmp_path):
    pruned, plan = _pruned(make_tiny, "llama", dict(heads=4, kv_heads=2), "block")
    out = save_pruned(pruned, plan, tmp_path / "out")
    with pytest.raises(LlmpruneError, match="not written by llmprune"):
        load_pruned(tmp_path)
    manifest = json.loads((out / MANIFEST).read_text())
    manifest["layers"][0]["intermediate_size"] += 1
    (out / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(LlmpruneError, match="weights do not match"):
        load_pruned(out)
    for damage, message in [
        ({k: v for k, v in manifest.items() if k != "layers"}, "not a valid llmprune manifest: layers: Field required"),
        ({**manifest, "layers": [{"num_attention_heads": 2}] * 3}, "layers.0.num_key_value_heads: Field required"),
        ({**manifest, "layers": [{**manifest["layers"][0], "num_key_value_heads": 0}]}, "greater than 0"),
        ({**manifest, "version": "abc"}, "version: Input should be a valid integer"),
        ([manifest], "holds a list, not a llmprune manifest"),
    ]:
        (out / MANIFEST).write_text(json.dumps(damage))
        with pytest.raises(LlmpruneError, match=message):
            load_pruned(out)


def test_load_refuses_truncated_weights(make_tiny, tmp_path):
    pruned, plan = _pruned(make_tiny, "llama", dict(heads=4, kv_heads=2), "block")
    out = save_pruned(pruned, plan, tmp_path / "out")
    weights = out / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])  # a copy that stopped early
    with pytest.raises(LlmpruneError, match="model.safetensors cannot be read.*damaged"):
        load_pruned(out)


def test_saving_over_a_folder_of_other_files_is_refused(make_tiny, tmp_path):
    pruned, plan = _pruned(make_tiny, "llama", dict(heads=4, kv_heads=2), "block")
    (tmp_path / "hf").mkdir()
    (tmp_path / "hf" / "config.json").write_text("{}")  # e.g. the input model's own folder
    with pytest.raises(LlmpruneError, match="not an llmprune output.*no .llmprune-output.json"):
        save_pruned(pruned, plan, tmp_path / "hf")
    assert [p.name for p in (tmp_path / "hf").iterdir()] == ["config.json"]
    out = save_pruned(pruned, plan, tmp_path / "out")
    save_pruned(pruned, plan, out)  # an earlier pruned folder is replaced


def test_load_in_another_dtype(make_tiny, tmp_path):
    pruned, plan = _pruned(make_tiny, "qwen2", dict(heads=4, kv_heads=2, tie_word_embeddings=True), "block")
    out = save_pruned(pruned, plan, tmp_path / "out")
    loaded = load_pruned(out, dtype=torch.bfloat16)
    assert {p.dtype for p in loaded.parameters()} == {torch.bfloat16}
    assert loaded.lm_head.weight is loaded.model.embed_tokens.weight
    with torch.no_grad():
        torch.testing.assert_close(loaded(IDS).logits.float(), pruned(IDS).logits, atol=0.1, rtol=0.05)
