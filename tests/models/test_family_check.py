"""An unsupported architecture is refused from config.json or the GGUF header, before any weights are read."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

from llmprune.cli.app import main
from llmprune.errors import LlmpruneError
from llmprune.models.gguf_header import gguf_architecture, gguf_model_type
from llmprune.models.load import check_family, model_type_of


def _gguf(path, arch: str):
    import gguf

    writer = gguf.GGUFWriter(str(path), arch)
    writer.add_block_count(1)
    writer.add_tensor("token_embd.weight", np.zeros((4, 4), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def test_gguf_header(tmp_path):
    assert gguf_architecture(_gguf(tmp_path / "a.gguf", "gemma3")) == "gemma3"
    assert gguf_model_type(tmp_path / "a.gguf") == "gemma3_text"
    (tmp_path / "bad.gguf").write_bytes(b"PK\x03\x04 not a gguf")
    with pytest.raises(LlmpruneError, match="not a GGUF file"):
        gguf_architecture(tmp_path / "bad.gguf")
    (tmp_path / "short.gguf").write_bytes(b"GGUF\x03\x00")
    with pytest.raises(LlmpruneError, match="not a readable GGUF file"):
        gguf_architecture(tmp_path / "short.gguf")


@pytest.mark.parametrize("kind", ["gguf", "folder"])
def test_unsupported_architecture_fails_fast(tmp_path, kind, capsys):
    if kind == "gguf":
        spec = _gguf(tmp_path / "m.gguf", "gpt2")
    else:
        spec = tmp_path / "m"
        spec.mkdir()
        (spec / "config.json").write_text(json.dumps({"model_type": "gpt2"}))
        (spec / "model.safetensors").write_bytes(b"\0" * 1024)  # never read
    assert model_type_of(str(spec)) == "gpt2"
    with pytest.raises(LlmpruneError, match="unsupported architecture 'gpt2'"):
        check_family(str(spec))
    for argv in (["prune", str(spec), "--out", str(tmp_path / "out")], ["groups", str(spec)]):
        t0 = time.perf_counter()
        with pytest.raises(SystemExit) as e:
            main(argv)
        assert e.value.code == 2 and time.perf_counter() - t0 < 10
        assert "unsupported architecture 'gpt2'" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_aliases_and_supported_folders_name_their_family(tiny_dir):
    assert model_type_of("gemma3-270m") == "gemma3_text" and str(check_family("qwen2.5-0.5b")) == "qwen2"
    assert str(check_family(str(tiny_dir("mistral")))) == "mistral"
