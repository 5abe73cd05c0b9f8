"""The recovery loop: it learns, leaves the model as it was, resumes bit-identically, rejects bad input."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from safetensors.torch import load_file

from llmprune.cli.app import main
from llmprune.errors import LlmpruneError
from llmprune.models import load_model
from llmprune.recovery import recover

BASE = {"batch_size": 4, "micro_batch_size": 2, "cutoff": 64, "lr": 5e-3, "warmup_steps": 2, "save_every": 2}


class Killed(Exception):
    pass


def test_recover_learns_and_restores_the_model(pruned, alpaca_file, tmp_path):
    model, tok = load_model(str(pruned()), device="cpu")
    before = {n: p.clone() for n, p in model.state_dict().items()}
    cfg = {**BASE, "data": str(alpaca_file), "steps": 12, "val_size": 4, "eval_every": 6}
    stats = recover(model, tok, cfg, tmp_path / "lora", progress=False)
    assert stats["steps"] == 12 and len(stats["losses"]) == 12 and stats["tokens"] > 0
    assert sum(stats["losses"][-3:]) < sum(stats["losses"][:3])  # it learns
    assert stats["val_loss"] is not None and [s for s, _ in stats["val_history"]] == [6]
    after = model.state_dict()
    assert set(after) == set(before) and all(torch.equal(after[k], before[k]) for k in before)
    assert not model.training and all(p.requires_grad for p in model.parameters())
    files = {p.name for p in (tmp_path / "lora").iterdir()}
    assert {"adapter_config.json", "adapter_model.safetensors", "recovery.json"} <= files
    assert "checkpoint" not in files
    adapter = load_file(str(tmp_path / "lora" / "adapter_model.safetensors"))
    assert any("lora_B" in k and v.abs().max() > 0 for k, v in adapter.items())
    saved = json.loads((tmp_path / "lora" / "recovery.json").read_text())
    assert saved["stats"]["losses"] == stats["losses"] and saved["config"]["lora_r"] == 8


@pytest.mark.parametrize("kill_at", [4])
def test_resume_after_a_kill_is_bit_identical(pruned, alpaca_file, tmp_path, kill_at):
    src = pruned()
    cfg = {**BASE, "data": str(alpaca_file), "steps": 7}
    model, tok = load_model(str(src), device="cpu")
    full = recover(model, tok, cfg, tmp_path / "full", progress=False)

    def kill(step, _):
        if step == kill_at + 1:  # dies during the step after the checkpoint at `kill_at`
            raise Killed

    model, tok = load_model(str(src), device="cpu")
    with pytest.raises(Killed):
        recover(model, tok, cfg, tmp_path / "part", progress=False, on_step=kill)
    assert (tmp_path / "part" / "checkpoint" / "state.json").is_file()
    assert not (tmp_path / "part" / "adapter_model.safetensors").exists()
    model, tok = load_model(str(src), device="cpu")
    with pytest.raises(LlmpruneError, match="pass --resume"):
        recover(model, tok, cfg, tmp_path / "part", progress=False)
    with pytest.raises(LlmpruneError, match="different settings.*lr"):
        recover(model, tok, {**cfg, "lr": 1e-3}, tmp_path / "part", resume=True, progress=False)
    with pytest.raises(LlmpruneError, match=f"at step {kill_at}, past this run's 3 steps"):
        recover(model, tok, {**cfg, "steps": 3}, tmp_path / "part", resume=True, progress=False)
    with pytest.raises(LlmpruneError, match="different settings.*base_plan_sha256"):  # another pruned model
        recover(model, tok, cfg, tmp_path / "part", resume=True, progress=False, base_info={"plan_sha256": "x"})
    damaged = tmp_path / "damaged"
    shutil.copytree(tmp_path / "part", damaged)
    (damaged / "checkpoint" / "state.json").write_text("{")
    with pytest.raises(LlmpruneError, match="state.json is damaged"):
        recover(model, tok, cfg, damaged, resume=True, progress=False)
    shutil.copytree(tmp_path / "part" / "checkpoint", tmp_path / "part" / ".checkpoint.old")  # a kill mid-rename
    resumed = recover(model, tok, cfg, tmp_path / "part", resume=True, progress=False)
    assert resumed["start_step"] == kill_at and resumed["losses"] == full["losses"]
    assert not [p for p in (tmp_path / "part").iterdir() if "checkpoint" in p.name]  # none left to resume from
    a = load_file(str(tmp_path / "full" / "adapter_model.safetensors"))
    b = load_file(str(tmp_path / "part" / "adapter_model.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    again = recover(model, tok, cfg, tmp_path / "part", resume=True, progress=False)  # finished: no-op
    assert again["losses"] == full["losses"]
    with pytest.raises(LlmpruneError, match="finished run with other settings.*lr"):
        recover(model, tok, {**cfg, "lr": 1e-3}, tmp_path / "part", resume=True, progress=False)


def test_a_checkpoint_of_other_shapes_is_refused(pruned, alpaca_file, tmp_path):
    cfg = {**BASE, "data": str(alpaca_file), "steps": 5}

    def kill(step, _):
        if step == 3:
            raise Killed

    model, tok = load_model(str(pruned("uniform")), device="cpu")
    with pytest.raises(Killed):
        recover(model, tok, cfg, tmp_path / "part", progress=False, on_step=kill)
    other, tok = load_model(str(pruned("nonuniform")), device="cpu")
    with pytest.raises(LlmpruneError, match="LoRA tensors of other shapes.*another model"):
        recover(other, tok, cfg, tmp_path / "part", resume=True, progress=False)


def test_tied_embeddings_cannot_be_a_lora_target():
    """LoRA on a tied lm_head would, once merged, also change the input embeddings."""
    from llmprune.recovery.lora import check_targets, shared_weights
    from tests.tiny import tiny_model

    tied = tiny_model("llama", tie_word_embeddings=True)
    assert shared_weights(tied, ["lm_head"]) == {"lm_head": ["model.embed_tokens.weight"]}
    with pytest.raises(LlmpruneError, match="lm_head shares its weight with model.embed_tokens.weight"):
        check_targets(tied, ["q_proj", "lm_head"])
    check_targets(tied, ["q_proj", "v_proj"])
    check_targets(tiny_model("llama", tie_word_embeddings=False), ["q_proj", "lm_head"])


def test_micro_batch_split_does_not_change_the_result(pruned, text_file, tmp_path):
    """The loss is normalised per step, so 1 x 4 and 2 x 2 micro-batches give the same adapter."""
    src = pruned("uniform")
    out = {}
    for micro in (2, 4):
        model, tok = load_model(str(src), device="cpu")
        cfg = {**BASE, "data": str(text_file), "steps": 3, "micro_batch_size": micro, "lora_dropout": 0.0}
        recover(model, tok, cfg, tmp_path / f"m{micro}", progress=False)
        out[micro] = load_file(str(tmp_path / f"m{micro}" / "adapter_model.safetensors"))
    for k in out[2]:
        torch.testing.assert_close(out[2][k], out[4][k], atol=1e-6, rtol=1e-4)


def test_bad_targets_and_data(pruned, alpaca_file, tmp_path, capsys):
    src = pruned()
    model, tok = load_model(str(src), device="cpu")
    with pytest.raises(LlmpruneError, match="LoRA target.*wq not found.*q_proj"):
        recover(model, tok, {**BASE, "data": str(alpaca_file), "targets": ["wq", "v_proj"]}, tmp_path / "x")
    for argv, message in [
        (["--data", str(tmp_path / "nope.json")], "training data not found"),
        (["--data", str(alpaca_file), "--targets", "q_proj,wq"], "LoRA target(s) wq not found"),
        (["--data", str(alpaca_file), "--batch-size", "6", "--micro-batch-size", "4"], "multiple of micro_batch_size"),
        (
            ["--data", str(alpaca_file), "--lora-dropout", "1.5"],
            "--lora-dropout: Input should be less than 1 (got 1.5)",
        ),
    ]:
        with pytest.raises(SystemExit) as e:
            main(["recover", str(src), "--out", str(tmp_path / "cli"), *argv])
        assert e.value.code == 2 and message in capsys.readouterr().err, argv
    bad = tmp_path / "bad.json"
    bad.write_text("[{")
    with pytest.raises(SystemExit) as e:
        main(["recover", str(src), "--out", str(tmp_path / "cli"), "--data", str(bad)])
    assert e.value.code == 2 and "not valid JSON" in capsys.readouterr().err


def test_recover_and_merge_cli(pruned, alpaca_file, tmp_path):
    src = pruned()
    args = ["--data", str(alpaca_file), "--steps", "3", "--batch-size", "4", "--micro-batch-size", "2"]
    with pytest.raises(SystemExit) as e:
        main(["recover", str(src), "--out", str(tmp_path / "lora"), "--cutoff", "64", "--lr", "0.01", *args])
    assert e.value.code in (None, 0)
    with pytest.raises(SystemExit) as e:
        main(["merge", str(src), str(tmp_path / "lora"), "--out", str(tmp_path / "merged")])
    assert e.value.code in (None, 0)
    merged, _ = load_model(str(tmp_path / "merged"), device="cpu")
    base, _ = load_model(str(src), device="cpu")
    ids = torch.tensor([[5, 6, 7, 8, 9]])
    with torch.no_grad():
        assert not torch.allclose(merged(ids).logits, base(ids).logits, atol=1e-4)
    other = tmp_path / "other"
    from tests.recovery.conftest import make_pruned

    make_pruned(other, "nonuniform", seed=1)  # same shapes; its plan.json is made different below
    (other / "plan.json").write_text((other / "plan.json").read_text().replace('"tiny"', '"tiny-2"'))
    model, _ = load_model(str(other), device="cpu")
    from llmprune.recovery import merge_lora

    with pytest.raises(LlmpruneError, match="another plan"):
        merge_lora(model, tmp_path / "lora", pruned_dir=other)
