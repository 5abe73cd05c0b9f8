"""`llmprune groups` end to end through the CLI entry point."""

from __future__ import annotations

import json
import time

import pytest

from llmprune.cli.app import main


def _run(argv) -> int:
    with pytest.raises(SystemExit) as e:
        main(argv)
    return e.value.code


@pytest.fixture
def tiny_folder(tmp_path, make_tiny):
    path = tmp_path / "tiny-qwen2"
    make_tiny("qwen2", heads=6, kv_heads=2).save_pretrained(path)
    return path


def test_groups_json_and_table(tiny_folder, tmp_path, capsys):
    out = tmp_path / "g.json"
    assert _run(["groups", str(tiny_folder), "--json", str(out)]) == 0
    printed = capsys.readouterr()
    text, err = " ".join(printed.out.split()), " ".join(printed.err.split())  # rich wraps long lines
    assert (
        "(qwen2, 3 layers)" in text and "hidden 48, head_dim 8, vocab 128, untied embeddings, biases: q, k, v" in text
    )
    assert "│ 0-2 │ 6 │ 2 │ 3 │ 48 │" in text
    assert "hidden group: 48 channels, 30 members across all 3 layers (embedding, lm_head, 7 norms" in text
    assert "verified against torch-pruning's trace: 13 groups" in err
    data = json.loads(out.read_text())
    assert (data["model_type"], data["num_layers"], data["hidden_size"], data["tied_embeddings"]) == (
        "qwen2",
        3,
        48,
        False,
    )
    assert data["layers"] == [{"heads": 6, "kv_heads": 2, "group_size": 3, "mlp_channels": 48}] * 3
    assert data["verified"]["groups"] == 13
    assert [g["id"] for g in data["groups"]][:4] == [
        "layers.0.attn_head",
        "layers.0.kv_group",
        "layers.0.mlp_channel",
        "layers.0.layer",
    ]
    kv = data["groups"][1]
    assert kv["units"] == 2 and kv["members"][1] == {
        "module": "model.layers.0.self_attn.q_proj",
        "param": "bias",
        "dim": 0,
        "unit_size": 24,
        "offset": 0,
    }


def test_layer_range_and_kind_selection(tiny_folder, tmp_path):
    out = tmp_path / "g.json"
    argv = ["groups", str(tiny_folder), "--layers", "1-2", "--kind", "mlp_channel,hidden", "--no-verify"]
    assert _run([*argv, "--json", str(out)]) == 0
    data = json.loads(out.read_text())
    assert [g["id"] for g in data["groups"]] == ["layers.1.mlp_channel", "layers.2.mlp_channel", "hidden"]
    assert data["selected_layers"] == [1, 2] and data["verified"] is False


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--layers", "0-3"], "layer range 0-3 is out of bounds: the model has 3 layers (0-2)"),
        (["--layers", "two"], "bad layer range 'two'"),
        (["--kind", "mlp,heads"], "unknown group kind(s) ['heads', 'mlp']"),
    ],
)
def test_bad_options_exit_2(args, message, tiny_folder, tmp_path, capsys):
    out = tmp_path / "g.json"
    assert _run(["groups", str(tiny_folder), *args, "--json", str(out)]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not out.exists()


def test_unsupported_architecture_exits_2(tmp_path, capsys):
    from transformers import GPT2Config

    GPT2Config(n_layer=1, n_embd=16, n_head=2, vocab_size=32).save_pretrained(tmp_path / "gpt2")
    assert _run(["groups", str(tmp_path / "gpt2")]) == 2
    err = capsys.readouterr().err
    assert (
        "unsupported architecture 'gpt2'" in err
        and "gemma2, gemma3_text, llama, mistral, olmo2, phi3, qwen2, qwen3" in err
    )


@pytest.mark.slow
def test_smollm2_groups(smollm2_dir, tmp_path, capsys):
    out = tmp_path / "g.json"
    t0 = time.perf_counter()
    assert _run(["groups", "smollm2-135m", "--json", str(out)]) == 0
    seconds = time.perf_counter() - t0
    data = json.loads(out.read_text())
    assert (data["num_layers"], data["hidden_size"], data["tied_embeddings"]) == (30, 576, True)
    groups = {g["id"]: g for g in data["groups"]}
    assert len(groups) == 30 * 4 + 1
    for i in range(30):
        assert groups[f"layers.{i}.kv_group"]["units"] == 3
        assert groups[f"layers.{i}.kv_group"]["members"][0]["unit_size"] == 3 * 64  # 3 query heads per KV head
        assert groups[f"layers.{i}.attn_head"]["units"] == 9
        assert groups[f"layers.{i}.mlp_channel"]["units"] == 1536
    hidden = groups["hidden"]
    assert hidden["units"] == 576 and len(hidden["members"]) == 1 + 30 * 9 + 1  # tied: no lm_head
    assert data["verified"]["groups"] == 121
    print(f"llmprune groups smollm2-135m: {seconds:.2f} s in process (verify {data['verified']['seconds']} s)")
    assert seconds < 60
