"""Acceptance 4 of #18: bad input is one `error:` line (exit 2) and nothing half written; only a GGUF
llmprune wrote is ever replaced."""

from __future__ import annotations

import errno
from pathlib import Path

import gguf
import pytest

from llmprune.cli.app import main
from tests.tiny import save_tiny


def _run(argv: list[str], capsys) -> tuple[int, str]:
    with pytest.raises(SystemExit) as e:
        main(argv)
    return e.value.code or 0, capsys.readouterr().err


def _export(src, out, capsys, *extra: str) -> tuple[int, str]:
    return _run(["export", str(src), "--format", "gguf", "--out", str(out), *extra], capsys)


LINEAR_ROPE = {"rope_type": "linear", "factor": 2.0, "rope_theta": 10000.0}


def _only_error(code: int, err: str, match: str) -> None:
    errors = [line for line in err.splitlines() if line.startswith("error:")]  # besides progress bars
    assert code == 2 and "Traceback" not in err, err
    assert len(errors) == 1 and match in errors[0], err


def _litter(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if "llmprune-tmp" in p.name)


@pytest.fixture
def dense(tmp_path):
    path = tmp_path / "dense"
    save_tiny(path, "llama", heads=4, kv_heads=2)
    return path


@pytest.mark.parametrize(
    ("extra", "match"),
    [(["--outtype", "q4_k"], "unknown --outtype 'q4_k'; choose one of f32, f16, bf16, q8_0")],
)
def test_unknown_outtype(dense, tmp_path, capsys, extra, match):
    code, err = _export(dense, tmp_path / "m.gguf", capsys, *extra)
    _only_error(code, err, match)
    assert not (tmp_path / "m.gguf").exists() and not _litter(tmp_path)


def test_unknown_format(dense, tmp_path, capsys):
    code, err = _run(["export", str(dense), "--format", "onnx", "--out", str(tmp_path / "m.gguf")], capsys)
    _only_error(code, err, "unknown --format 'onnx'; choose one of gguf")


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda p: save_tiny(p, "gemma2", heads=4, kv_heads=2), "gemma2 needs tensors"),
        (lambda p: save_tiny(p, "phi3", heads=4, kv_heads=2), "phi3 needs tensors"),
        (lambda p: save_tiny(p, "mistral", heads=4, kv_heads=2), "sliding-window attention is not exported"),
        (lambda p: save_tiny(p, "llama", rope_parameters=LINEAR_ROPE), "rope scaling 'linear' is not exported"),
    ],
    ids=["gemma2", "phi3", "sliding-window", "rope-scaling"],
)
def test_families_llama_cpp_cannot_express(make, match, tmp_path, capsys):
    src = tmp_path / "src"
    make(src)
    code, err = _export(src, tmp_path / "m.gguf", capsys)
    _only_error(code, err, match)
    assert not (tmp_path / "m.gguf").exists() and not _litter(tmp_path)


def _plain_gguf(path: Path) -> None:
    w = gguf.GGUFWriter(path, "llama")
    w.add_block_count(1)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


@pytest.mark.parametrize("kind", ["text", "gguf", "folder"])
def test_existing_file_not_written_by_llmprune_is_kept(kind, dense, tmp_path, capsys):
    out = tmp_path / "m.gguf"
    if kind == "text":
        out.write_text("my notes")
    elif kind == "gguf":
        _plain_gguf(out)
    else:
        out.mkdir()
    before = out.read_bytes() if out.is_file() else None
    code, err = _export(dense, out, capsys)
    _only_error(code, err, "not a regular file" if kind == "folder" else "was not written by llmprune export")
    assert (out.read_bytes() if out.is_file() else None) == before and not _litter(tmp_path)


def test_out_must_end_in_gguf(dense, tmp_path, capsys):
    code, err = _export(dense, tmp_path / "m.bin", capsys)
    _only_error(code, err, "must end in .gguf")


def test_own_gguf_is_replaced_and_a_failed_write_leaves_it_whole(dense, tmp_path, capsys, monkeypatch):
    import llmprune.ggufio.writer as writer

    out = tmp_path / "m.gguf"
    assert _export(dense, out, capsys)[0] == 0
    assert _export(dense, out, capsys, "--outtype", "f16")[0] == 0  # llmprune's own file: replaced
    assert gguf.GGUFReader(out).fields["general.file_type"].contents() == gguf.LlamaFileType.MOSTLY_F16
    before = out.read_bytes()

    def full_disk(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(writer, "_write_tensors", full_disk)
    code, err = _export(dense, out, capsys, "--outtype", "q8_0")
    _only_error(code, err, "No space left on device")
    assert out.read_bytes() == before and not _litter(tmp_path)


def test_a_file_that_does_not_load_back_is_not_written(dense, tmp_path, capsys, monkeypatch):
    import llmprune.ggufio.reader as reader

    def broken(*args, **kwargs):
        raise ValueError("simulated reader bug")

    monkeypatch.setattr(reader, "load_llmprune_gguf", broken)
    code, err = _export(dense, tmp_path / "m.gguf", capsys)
    _only_error(code, err, "does not load back (ValueError: simulated reader bug); nothing was written")
    assert not (tmp_path / "m.gguf").exists() and not _litter(tmp_path)
