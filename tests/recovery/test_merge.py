"""Merge exactness (PeftModel == merged == merged after save -> load) and merge refusals."""

from __future__ import annotations

import json

import pytest
import torch

from llmprune.cli.app import main
from llmprune.errors import LlmpruneError
from llmprune.models import load_model
from llmprune.recovery import RecoveryConfig, merge_lora, save_merged
from llmprune.recovery.lora import attach_lora
from llmprune.surgery import load_pruned, read_manifest

IDS = torch.tensor([[3, 9, 27, 81, 4, 12, 36, 108, 5, 77], [6, 2, 90, 41, 17, 8, 64, 33, 120, 11]])


def logits(model) -> torch.Tensor:
    with torch.no_grad():
        return model(input_ids=IDS).logits.float()


def make_adapter(pruned_dir, adapter_dir, *, seed: int = 0, targets=None, scale: float = 0.3):
    """A LoRA adapter on the pruned model with random non-zero A and B; returns the PeftModel logits."""
    model, _ = load_model(str(pruned_dir), dtype="float32", device="cpu")
    cfg = RecoveryConfig(targets=targets) if targets else RecoveryConfig()
    peft_model = attach_lora(model, cfg)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in peft_model.named_parameters():
            if "lora_" in name:
                p.copy_(torch.randn(p.shape, generator=g) * scale)
    peft_model.eval()
    ref = logits(peft_model)
    peft_model.save_pretrained(adapter_dir)
    return ref


@pytest.mark.parametrize("kind", ["uniform", "nonuniform"])
def test_merge_is_exact_and_reloads_without_peft(pruned, tmp_path, kind):
    src = pruned(kind)
    ref = make_adapter(src, tmp_path / "lora")
    base, tok = load_model(str(src), dtype="float32", device="cpu")
    unmerged = logits(base)
    assert (ref - unmerged).abs().max() > 1e-2  # the adapter really changes the model
    merged = merge_lora(base, tmp_path / "lora", pruned_dir=src)
    assert not any("lora" in n for n, _ in merged.named_parameters())
    torch.testing.assert_close(logits(merged), ref, atol=1e-4, rtol=0)
    out = save_merged(merged, src, tmp_path / "merged", tokenizer=tok)
    for reloaded in (load_model(str(out), device="cpu")[0], load_pruned(out)):
        torch.testing.assert_close(logits(reloaded), ref, atol=1e-4, rtol=0)
    manifest, original = read_manifest(out), read_manifest(src)
    assert manifest.layers == original.layers and manifest.stock_loadable == original.stock_loadable
    assert (out / "plan.json").read_text() == (src / "plan.json").read_text()


def test_incompatible_adapter_is_refused(pruned, tmp_path):
    make_adapter(pruned("uniform"), tmp_path / "lora")
    other = pruned("nonuniform")
    model, _ = load_model(str(other), device="cpu")
    with pytest.raises(LlmpruneError, match="does not fit this model.*size mismatch"):
        merge_lora(model, tmp_path / "lora")


def test_adapter_targets_missing_modules(pruned, tmp_path):
    src = pruned("uniform")
    make_adapter(src, tmp_path / "lora", targets=["q_proj"])
    cfg_file = tmp_path / "lora" / "adapter_config.json"
    cfg = json.loads(cfg_file.read_text())
    cfg["target_modules"] = ["q_proj", "wqkv"]
    cfg_file.write_text(json.dumps(cfg))
    model, _ = load_model(str(src), device="cpu")
    with pytest.raises(LlmpruneError, match="targets wqkv, which this model does not have"):
        merge_lora(model, tmp_path / "lora")


def test_adapter_targets_as_a_peft_regex_are_left_to_peft(pruned, tmp_path):
    src = pruned("uniform")
    make_adapter(src, tmp_path / "lora", targets=["q_proj"])
    cfg_file = tmp_path / "lora" / "adapter_config.json"
    cfg = json.loads(cfg_file.read_text())
    cfg["target_modules"] = r".*\.q_proj"
    cfg_file.write_text(json.dumps(cfg))
    model, _ = load_model(str(src), device="cpu")
    reference, _ = load_model(str(src), device="cpu")
    merged = merge_lora(model, tmp_path / "lora")
    assert not any("lora" in n for n in merged.state_dict())
    changed = [n for n, p in merged.state_dict().items() if not torch.equal(p, reference.state_dict()[n])]
    assert changed and all(n.endswith("q_proj.weight") for n in changed)


def test_adapter_on_a_tied_lm_head_is_refused(tmp_path):
    from tests.tiny import tiny_model

    lora = tmp_path / "lora"
    lora.mkdir()
    (lora / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA", "target_modules": ["lm_head"]}))
    (lora / "adapter_model.safetensors").write_bytes(b"")
    with pytest.raises(LlmpruneError, match="targets lm_head, which shares its weight.*tied embeddings"):
        merge_lora(tiny_model("llama", tie_word_embeddings=True), lora)


def test_non_finite_merge_is_refused(pruned, tmp_path, capsys):
    src = pruned("uniform")
    make_adapter(src, tmp_path / "lora", scale=1e30)  # B @ A overflows to inf
    model, _ = load_model(str(src), device="cpu")
    with pytest.raises(LlmpruneError, match="non-finite"):
        merge_lora(model, tmp_path / "lora")
    with pytest.raises(SystemExit) as e:
        main(["merge", str(src), str(tmp_path / "lora"), "--out", str(tmp_path / "merged")])
    assert e.value.code == 2 and "non-finite" in capsys.readouterr().err
    assert not (tmp_path / "merged").exists()


def test_merge_cli_errors(pruned, tmp_path, capsys):
    src = pruned("uniform")
    (tmp_path / "empty").mkdir()
    for argv, message in [
        (["merge", str(src), str(tmp_path / "empty"), "--out", str(tmp_path / "m")], "not a LoRA adapter folder"),
        (["merge", str(tmp_path / "empty"), str(tmp_path / "empty"), "--out", str(tmp_path / "m")], "llmprune.json"),
    ]:
        with pytest.raises(SystemExit) as e:
            main(argv)
        assert e.value.code == 2 and message in capsys.readouterr().err, argv
    assert not (tmp_path / "m").exists()
