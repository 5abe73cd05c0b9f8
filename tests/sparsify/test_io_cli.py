"""Saving sparse models and the `llmprune sparsify` command end to end on tiny models."""

from __future__ import annotations

import json

import pytest
import torch

from llmprune.cli.app import main
from llmprune.models import load_model
from llmprune.sparsify import SparsifyConfig, save_sparse, sparsify_
from llmprune.sparsify.targets import target_linears
from tests.tiny import word_tokenizer


def _run(argv):
    try:
        main(argv)
    except SystemExit as e:
        return e.code
    return 0


@pytest.mark.parametrize("tie", [False, True])
def test_save_then_load_gives_identical_logits(tmp_path, make_tiny, tie):
    model = make_tiny("llama", tie_word_embeddings=tie)
    report = sparsify_(model, SparsifyConfig(method="magnitude", sparsity=0.5), progress=False)
    out = save_sparse(model, word_tokenizer(), tmp_path / "sparse", report)
    assert {"config.json", "model.safetensors", "report.json", "tokenizer.json"} <= {p.name for p in out.iterdir()}
    loaded, tok = load_model(str(out), dtype="float32", device="cpu")
    ids = torch.randint(0, 128, (2, 12), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():  # same weights; the reloaded model may pick another attention kernel (sdpa vs eager)
        assert torch.allclose(model(input_ids=ids).logits, loaded(input_ids=ids).logits, atol=1e-5, rtol=1e-5)
    for name, lin in target_linears(loaded).items():
        assert torch.equal(lin.weight, model.get_submodule(name).weight), name
    assert json.loads((out / "report.json").read_text())["achieved"]["overall"] == pytest.approx(0.5)


@pytest.fixture
def calib_file(tmp_path):
    g = torch.Generator().manual_seed(0)
    path = tmp_path / "docs.jsonl"
    docs = [" ".join(f"t{i}" for i in torch.randint(2, 128, (50,), generator=g).tolist()) for _ in range(6)]
    path.write_text("".join(json.dumps({"text": d}) + "\n" for d in docs))
    return path


@pytest.mark.parametrize("mode", ["--sequential", "--one-shot"])
def test_cli_wanda_writes_a_loadable_folder_and_report(tmp_path, tiny_dir, calib_file, capsys, mode):
    model_dir, out = tiny_dir("llama"), tmp_path / "wanda"
    argv = ["sparsify", str(model_dir), "--method", "wanda", "--sparsity", "0.5", "--calib", str(calib_file), mode]
    assert _run([*argv, "--samples", "4", "--seq-len", "16", "--out", str(out)]) == 0
    assert "down" in capsys.readouterr().out  # the per-layer table
    report = json.loads((out / "report.json").read_text())
    assert report["method"] == "wanda" and report["config"]["calib"]["samples"] == 4
    assert report["config"]["sequential"] is (mode == "--sequential")
    assert report["achieved"]["overall"] == pytest.approx(0.5) and report["seconds"] >= 0
    model, _ = load_model(str(out), dtype="float32", device="cpu")
    for lin in target_linears(model).values():
        assert ((lin.weight == 0).sum(dim=1) == lin.in_features // 2).all()


def test_cli_pattern_json(tmp_path, tiny_dir, capsys):
    out, js = tmp_path / "m24", tmp_path / "sparsify.json"
    argv = ["sparsify", str(tiny_dir()), "--method", "magnitude", "--pattern", "2:4", "--out", str(out)]
    assert _run([*argv, "--json", str(js)]) == 0
    report = json.loads(js.read_text())  # --json FILE, as in every command; the table is printed too
    assert "total" in capsys.readouterr().out
    assert report["config"]["pattern"] == "2:4" and report["config"]["target_sparsity"] == 0.5
    assert all(row["total"] == 0.5 for row in report["achieved"]["layers"])


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--sparsity", "1.0"], "--sparsity: Value error, sparsity must be in [0, 1)"),
        (["--sparsity", "-0.2"], "--sparsity: Value error, sparsity must be in [0, 1)"),
        (["--pattern", "3:5"], "model.layers.0.self_attn.q_proj: its 32 inputs are not a multiple of 5"),
        (["--pattern", "4:2"], "need 0 < N < M"),
        (["--pattern", "2:4", "--sparsity", "0.3"], "implies sparsity 0.5"),
        (["--method", "sparsegpt"], "--method: Value error, unknown method 'sparsegpt'"),
        (["--method", "wanda", "--samples", "0"], "--samples: Input should be greater than or equal to 1 (got 0)"),
    ],
)
def test_cli_bad_input_exits_2_and_writes_nothing(tmp_path, tiny_dir, capsys, extra, message):
    out = tmp_path / "never"
    assert _run(["sparsify", str(tiny_dir()), "--method", "magnitude", *extra, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not out.exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".never")]
