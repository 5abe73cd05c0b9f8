"""The sequential engine: exact surgery after the pass (refit biases included), error scores against brute
force on a real layer's activations, save -> load, and the budget with the biases counted."""

from __future__ import annotations

import copy

import pytest
import torch

from llmprune.prune import PruneConfig
from llmprune.prune.sequential import Counts, sequential_prune_
from llmprune.surgery import load_pruned, prune_, save_pruned

IDS = torch.randint(0, 128, (2, 10), generator=torch.Generator().manual_seed(1))
BATCHES = torch.randint(0, 128, (16, 12), generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize("family", ["llama", "mistral", "qwen2", "qwen3", "gemma2", "gemma3_text", "phi3", "olmo2"])
@pytest.mark.parametrize(("compensate", "bias"), [("layer", False), ("layer", True), ("dense", True)])
def test_pass_then_surgery_is_exact(make_tiny, family, compensate, bias):
    model = make_tiny(family, heads=6, kv_heads=2)
    same = family == "phi3"  # the same heads in every layer
    counts = {0: Counts(1, 10), 1: Counts(1 if same else 0, 5), 2: Counts(1 if same else 2, 0)}
    cfg = PruneConfig(engine="sequential", compensate=compensate, bias=bias)
    plan = sequential_prune_(model, BATCHES, counts, cfg, progress=False)
    assert [(lp.layer, len(lp.heads), len(lp.mlp_channels)) for lp in plan.layers][0] == (0, 2, 10)
    masked = copy.deepcopy(model)
    pruned = prune_(model, plan)
    with torch.no_grad():
        torch.testing.assert_close(pruned(IDS).logits, masked(IDS).logits, atol=1e-5, rtol=0)
    has_bias = [pruned.get_submodule(f"model.layers.{i}.mlp.down_proj").bias is not None for i in range(3)]
    assert has_bias == [bias] * 3


def test_refit_biases_save_and_load(make_tiny, tmp_path):
    from transformers import AutoModelForCausalLM

    model = make_tiny("llama", heads=6, kv_heads=2)
    plan = sequential_prune_(
        model, BATCHES, {0: Counts(1, 10), 2: Counts(0, 4)}, PruneConfig(engine="sequential", bias=True)
    )
    prune_(model, plan)
    out = save_pruned(model, plan, tmp_path / "out")
    manifest = (out / "llmprune.json").read_text()
    assert '"added_biases": [\n  "o",\n  "down"\n ]' in manifest and '"stock_loadable": false' in manifest
    with torch.no_grad():
        ref = model(IDS).logits
        torch.testing.assert_close(load_pruned(out)(IDS).logits, ref, atol=1e-5, rtol=0)
        remote = AutoModelForCausalLM.from_pretrained(out, trust_remote_code=True, attn_implementation="eager")
        torch.testing.assert_close(remote(IDS).logits, ref, atol=1e-5, rtol=0)


def test_error_of_each_channel_is_the_brute_force_refit_error(make_tiny):
    """On a tiny model's real down_proj inputs: dE of each channel == the least-squares refit error."""
    from llmprune.activations import Moments, record_inputs
    from llmprune.prune import obs

    model = make_tiny("llama", heads=4, kv_heads=2)
    lin = model.model.layers[1].mlp.down_proj
    xs = []
    with torch.no_grad(), record_inputs(model, {"model.layers.1.mlp.down_proj": Moments(48)}) as stats:
        lin.register_forward_pre_hook(lambda _m, a: xs.append(a[0].reshape(-1, 48).double()))
        model(BATCHES)
    x = torch.cat(xs)
    stat = stats["model.layers.1.mlp.down_proj"]
    gram = obs.augment(stat.xtx, stat.xsum, stat.count)
    w = torch.cat([lin.weight.detach().double(), torch.zeros(32, 1, dtype=torch.float64)], dim=1)
    errs = obs.block_errors(w, obs.damped_inverse(gram, 0.0), [[c] for c in range(48)])
    y = x @ lin.weight.detach().double().T
    for c in (0, 17, 47):
        keep = [j for j in range(48) if j != c]
        xk = torch.cat([x[:, keep], torch.ones(len(x), 1, dtype=x.dtype)], dim=1)
        brute = (y - xk @ torch.linalg.lstsq(xk, y).solution).pow(2).sum()
        torch.testing.assert_close(errs[c], brute, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize(
    ("allocation", "bias"),
    [("taylor", False), ("taylor", True), ("fisher", True), ("error", True), ("error-std", True), ("depth", False)],
)
def test_engine_meets_the_ratio_with_biases_counted(make_tiny, tiny_text_data, allocation, bias):
    from llmprune.prune.pipeline import prune_model
    from tests.tiny import word_tokenizer

    model = make_tiny("llama", heads=6, kv_heads=2, intermediate_size=96, num_hidden_layers=4)
    cfg = PruneConfig(
        ratio=0.2,
        engine="sequential",
        allocation=allocation,
        bias=bias,
        sequential_calib={"samples": 8, "seq_len": 16},
    )
    result = prune_model(model, word_tokenizer(), cfg, progress=False)
    assert 0.2 <= result.ratio_removed < 0.215
    assert result.plan.meta["config"]["engine"] == "sequential"


@pytest.mark.parametrize(("compensate", "bias", "tied"), [("layer", False, False), ("dense", True, True)])
def test_offload_writes_the_same_folder(tiny_dir, tiny_text_data, tmp_path, compensate, bias, tied):
    """Layers read one at a time from the safetensors files and written out one at a time as they are done
    (streamed save): the same plan and, byte for byte, the same folder as pruning in memory."""
    from llmprune.jobs import run_recipe
    from llmprune.prune.plan import PrunePlan
    from llmprune.recipes import recipe_from_dict

    src = tiny_dir("llama", heads=6, kv_heads=2, intermediate_size=96, num_hidden_layers=4, tie_word_embeddings=tied)
    outs = {}
    for offload in (False, True):
        recipe = recipe_from_dict(
            {
                "model": str(src),
                "prune": {
                    "ratio": 0.2,
                    "engine": "sequential",
                    "allocation": "error",  # offload takes no gradients
                    "compensate": compensate,
                    "bias": bias,
                    "offload": offload,
                    "layers": "1-2",  # layers before and after the range are streamed through too
                    "sequential_calib": {"samples": 8, "seq_len": 16},
                },
            }
        )
        outs[offload] = tmp_path / f"out-{offload}"
        report = run_recipe(recipe, outs[offload], progress=False)
        assert report["memory"]["offload"] is offload and report["memory"]["peak_rss_bytes"] > 0
    plans = {k: PrunePlan.load(outs[k] / "plan.json") for k in outs}
    assert plans[True].layers == plans[False].layers and plans[True].base == plans[False].base
    meta = {k: {**p.meta["config"], "offload": None} for k, p in plans.items()}
    assert meta[True] == meta[False]  # the same plan but for the offload flag itself
    files = sorted(p.name for p in outs[False].iterdir())
    assert files == sorted(p.name for p in outs[True].iterdir())
    for name in set(files) - {"plan.json", "report.json"}:
        assert (outs[True] / name).read_bytes() == (outs[False] / name).read_bytes(), name
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []  # no scratch folder left
    with torch.no_grad():
        a, b = (load_pruned(outs[k]) for k in (False, True))
        assert torch.equal(a(IDS).logits, b(IDS).logits)


def test_offload_with_evaluation_reads_the_layers_back(tiny_dir, tiny_text_data, tmp_path):
    """Evaluating the pruned model needs it whole: the written layers are read back, the same perplexity."""
    from llmprune.jobs import run_recipe
    from llmprune.recipes import recipe_from_dict

    src = tiny_dir("llama", heads=6, kv_heads=2, intermediate_size=96, num_hidden_layers=4)
    ppl = {}
    for offload in (False, True):
        prune = {"ratio": 0.2, "engine": "sequential", "allocation": "depth", "offload": offload}
        prune["sequential_calib"] = {"samples": 8, "seq_len": 16}
        recipe = recipe_from_dict({"model": str(src), "prune": prune, "eval": {"max_windows": 4, "seq_len": 16}})
        ppl[offload] = run_recipe(recipe, tmp_path / f"out-{offload}", progress=False)["ppl"]
    assert ppl[True] == ppl[False]
