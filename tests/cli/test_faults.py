"""Every foreseeable fault is one `error:` line (exit 2), never a traceback, and leaves the user's files as they were.

One test per reproduction of the safe-outputs issue: folders of the user's own files named as --out, a
--resume on a folder that is not a recovery run, a full disk, damaged inputs, crafted manifests.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from llmprune.cli.app import main

PRUNE = ["--samples", "2", "--seq-len", "16", "--reconstruct-samples", "2"]


def _run(argv: list[str], capsys) -> tuple[int, str]:
    with pytest.raises(SystemExit) as e:
        main(argv)
    return e.value.code or 0, capsys.readouterr().err


def _tree(path: Path) -> dict[str, bytes]:
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


def _litter(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*") if "llmprune-tmp" in p.name or ".tmp" in p.name)


@pytest.fixture
def run_dir(tiny_dir, tiny_text_data, tmp_path, capsys):
    out = tmp_path / "run"
    code, err = _run(["prune", str(tiny_dir(num_hidden_layers=2)), *PRUNE, "--out", str(out)], capsys)
    assert code == 0, err
    return out


def test_a_folder_with_a_report_file_is_not_an_output(run_dir, tiny_dir, tmp_path, capsys):
    """Item 1: `report` and `prune` replaced any folder holding report.md / report.json."""
    proj = tmp_path / "proj"
    (proj / "src").mkdir(parents=True)
    (proj / "report.md").write_text("x")
    (proj / "src" / "main.py").write_text("y")
    proj2 = tmp_path / "proj2"
    proj2.mkdir()
    (proj2 / "report.json").write_text("{}")
    (proj2 / "keep.txt").write_text("z")
    before = {p: _tree(p) for p in (proj, proj2)}
    code, err = _run(["report", str(run_dir), "--out", str(proj)], capsys)
    assert code == 2 and "is not an llmprune output" in err and "left as is" in err
    code, err = _run(["prune", str(tiny_dir()), *PRUNE, "--out", str(proj2)], capsys)
    assert code == 2 and "is not an llmprune output" in err
    code, err = _run(["sparsify", str(tiny_dir()), "--method", "magnitude", "--out", str(proj2)], capsys)
    assert code == 2 and "is not an llmprune output" in err
    assert {p: _tree(p) for p in (proj, proj2)} == before
    assert _litter(tmp_path) == []
    # llmprune's own outputs are replaced, each by its own kind only
    assert _run(["report", str(run_dir), "--out", str(tmp_path / "rep")], capsys)[0] == 0
    assert _run(["report", str(run_dir), "--out", str(tmp_path / "rep")], capsys)[0] == 0
    code, err = _run(["report", str(run_dir), "--out", str(run_dir)], capsys)
    assert code == 2 and "is an llmprune run folder, not a report output" in err
    assert (run_dir / "model.safetensors").is_file()


def test_resume_refuses_a_folder_that_is_not_a_recovery_run(run_dir, tmp_path, capsys):
    """Item 2: `recover --resume` deleted a user's `checkpoint/`; without --resume the error suggested it."""
    mine = tmp_path / "mine"
    (mine / "checkpoint").mkdir(parents=True)
    (mine / "checkpoint" / "notes.txt").write_text("keep")
    (mine / "checkpoint" / "state.json").write_text('{"step": 1}')
    before = _tree(mine)
    base = ["recover", str(run_dir), "--out", str(mine), "--data", "wikitext2", "--steps", "1"]
    for extra in (["--resume"], []):
        code, err = _run([*base, *extra], capsys)
        assert code == 2 and "not an llmprune recovery folder" in err and "--resume" not in err, err
    assert _tree(mine) == before


def test_a_full_disk_while_saving_is_one_error_and_leaves_nothing(run_dir, tiny_dir, tmp_path, capsys, monkeypatch):
    """Items 3 and 4: a full disk mid-save (safetensors raises its own error type, not OSError)."""
    from safetensors import SafetensorError

    def full(*args, **kwargs):
        raise SafetensorError("Error while serializing: I/O error: No space left on device (os error 28)")

    src = tiny_dir()
    monkeypatch.setattr("transformers.modeling_utils.safe_save_file", full)
    before = _tree(run_dir)
    code, err = _run(["prune", str(src), *PRUNE, "--out", str(run_dir)], capsys)
    assert code == 2 and "error: " in err and "no space left on the disk" in err and "Traceback" not in err
    assert _tree(run_dir) == before and _litter(tmp_path) == []


def test_a_full_disk_during_a_recovery_checkpoint(run_dir, tmp_path, capsys, monkeypatch):
    """Item 3: a full disk while a checkpoint was written left `.checkpoint.tmp` behind."""
    real = torch.save

    def full(obj, f, *args, **kwargs):
        if str(f).endswith("optimizer.pt"):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(f))
        return real(obj, f, *args, **kwargs)

    monkeypatch.setattr(torch, "save", full)
    out = tmp_path / "lora"
    argv = ["recover", str(run_dir), "--out", str(out), "--data", "wikitext2", "--steps", "2", "--save-every", "1"]
    code, err = _run([*argv, "--batch-size", "2", "--micro-batch-size", "2", "--cutoff", "16"], capsys)
    assert code == 2 and "no space left on the disk" in err, err
    assert _litter(tmp_path) == [] and not (out / "checkpoint").exists()


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("mount") is None, reason="a real full disk needs root (tmpfs)")
def test_a_real_full_disk(tiny_dir, tiny_text_data, tmp_path, capsys):
    """Item 4 on a real 64 KiB tmpfs: the weights do not fit; one error line, nothing left on the disk."""
    disk = tmp_path / "disk"
    disk.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(disk)]).returncode:
        pytest.skip("cannot mount a tmpfs here")
    try:
        code, err = _run(["prune", str(tiny_dir()), *PRUNE, "--out", str(disk / "out")], capsys)
        assert code == 2 and "no space left on the disk" in err, err
        assert list(disk.iterdir()) == []
    finally:
        subprocess.run(["umount", str(disk)])


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("mount") is None, reason="a read-only mount needs root")
def test_an_unwritable_cache_is_named(tmp_path, monkeypatch):
    """Item 4: LLMPRUNE_CACHE on a read-only file system (root ignores permission bits, so a real mount)."""
    from llmprune.errors import LlmpruneError
    from llmprune.models.cache import cache_subdir

    ro = tmp_path / "ro"
    ro.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", str(ro)]).returncode:
        pytest.skip("cannot mount a tmpfs here")
    try:
        monkeypatch.setenv("LLMPRUNE_CACHE", str(ro / "cache"))
        with pytest.raises(LlmpruneError, match="Read-only file system.*set LLMPRUNE_CACHE to a writable folder"):
            cache_subdir("gguf")
    finally:
        subprocess.run(["umount", str(ro)])


def test_damaged_inputs_are_named(tiny_dir, tiny_text_data, tmp_path, capsys, monkeypatch):
    """Item 4: damaged model folders, a bad cache path, a binary calibration file, custom code."""
    src = tiny_dir()
    cases = []
    empty_config = tmp_path / "empty-config"
    shutil.copytree(src, empty_config)
    (empty_config / "config.json").write_text("{}")
    cases.append((["eval", str(empty_config), "--ppl", "wikitext2"], "names no model_type"))
    truncated = tmp_path / "truncated"
    shutil.copytree(src, truncated)
    data = (truncated / "model.safetensors").read_bytes()
    (truncated / "model.safetensors").write_bytes(data[: len(data) // 2])
    cases.append((["eval", str(truncated), "--ppl", "wikitext2"], "a safetensors file is damaged or incomplete"))
    custom = tmp_path / "custom"
    shutil.copytree(src, custom)
    cfg = json.loads((custom / "config.json").read_text())
    cfg.update(model_type="mything", auto_map={"AutoConfig": "x.C", "AutoModelForCausalLM": "x.M"})
    (custom / "config.json").write_text(json.dumps(cfg))
    cases.append((["eval", str(custom), "--ppl", "wikitext2"], "never runs a model folder's own code"))
    binary = tmp_path / "calib.bin"
    binary.write_bytes(bytes(range(256)) * 8)
    cases.append((["prune", str(src), "--calib", str(binary), "--out", str(tmp_path / "o")], "is not UTF-8 text"))
    cases.append((["prune", str(src), "--calib", "./no-such.txt", "--out", str(tmp_path / "o")], "data file not found"))
    for argv, message in cases:
        code, err = _run(argv, capsys)
        assert code == 2 and message in err and "Traceback" not in err, (argv, err)
    cache_file = tmp_path / "cache-file"
    cache_file.write_text("x")
    monkeypatch.setenv("LLMPRUNE_CACHE", str(cache_file))
    from llmprune.models.aliases import alias_gguf

    with pytest.raises(Exception, match="set LLMPRUNE_CACHE to a writable folder"):
        alias_gguf("smollm2-135m")
    assert not (tmp_path / "o").exists()


def test_a_bad_calibration_file_fails_before_the_model_loads(tiny_dir, tiny_text_data, tmp_path, capsys, monkeypatch):
    def never(*args, **kwargs):
        raise AssertionError("the model was loaded before the calibration file was checked")

    monkeypatch.setattr("llmprune.models.load_model", never)
    monkeypatch.setattr("llmprune.models.load.load_model", never)
    code, err = _run(
        ["prune", str(tiny_dir()), "--calib", str(tmp_path / "x.txt"), "--out", str(tmp_path / "o")], capsys
    )
    assert code == 2 and "data file not found" in err


def test_an_out_that_is_a_file_fails_before_the_prune(tiny_dir, tiny_text_data, tmp_path, capsys, monkeypatch):
    def never(*args, **kwargs):
        raise AssertionError("pruned before checking --out")

    monkeypatch.setattr("llmprune.prune.pipeline.prune_model", never)
    (tmp_path / "file").write_text("x")
    code, err = _run(["prune", str(tiny_dir()), *PRUNE, "--out", str(tmp_path / "file")], capsys)
    assert code == 2 and "is a file" in err and (tmp_path / "file").read_text() == "x"


def _checkpointed(run_dir: Path, out: Path, capsys) -> Path:
    """A recovery run stopped after its first checkpoint (what a kill leaves)."""
    from llmprune.models import load_model
    from llmprune.recovery import recover

    class Stop(Exception):
        pass

    def stop(step, _):
        if step == 2:
            raise Stop

    from llmprune.runfolder import RunFolder

    model, tok = load_model(str(run_dir), device="cpu")
    cfg = {"data": "wikitext2", "steps": 3, "batch_size": 2, "micro_batch_size": 2, "cutoff": 16, "save_every": 1}
    base = {"pruned_dir": str(run_dir.resolve()), "plan_sha256": RunFolder(run_dir).plan_digest()}  # as the CLI
    with pytest.raises(Stop):
        recover(model, tok, cfg, out, progress=False, on_step=stop, base_info=base)
    return out / "checkpoint"


def test_damaged_checkpoints_and_adapters_are_named(run_dir, tmp_path, capsys):
    """Item 4: truncated checkpoint / adapter safetensors, a pickle optimizer.pt."""
    base = ["--data", "wikitext2", "--steps", "3", "--batch-size", "2", "--micro-batch-size", "2", "--cutoff", "16"]
    ckpt = _checkpointed(run_dir, tmp_path / "a", capsys)
    weights = ckpt / "trainable.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    code, err = _run(
        ["recover", str(run_dir), "--out", str(tmp_path / "a"), "--resume", *base, "--save-every", "1"], capsys
    )
    assert code == 2 and "trainable.safetensors cannot be read" in err and "remove" in err, err
    ckpt = _checkpointed(run_dir, tmp_path / "b", capsys)

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    import pickle

    (ckpt / "optimizer.pt").write_bytes(pickle.dumps({"state": Evil()}))
    code, err = _run(
        ["recover", str(run_dir), "--out", str(tmp_path / "b"), "--resume", *base, "--save-every", "1"], capsys
    )
    assert code == 2 and "optimizer.pt cannot be loaded safely" in err and "pwned" not in err, err
    lora = tmp_path / "lora"
    assert _run(["recover", str(run_dir), "--out", str(lora), *base], capsys)[0] == 0
    adapter = lora / "adapter_model.safetensors"
    adapter.write_bytes(adapter.read_bytes()[:64])
    code, err = _run(["merge", str(run_dir), str(lora), "--out", str(tmp_path / "merged")], capsys)
    assert code == 2 and "adapter_model.safetensors cannot be read" in err, err
    assert not (tmp_path / "merged").exists() and _litter(tmp_path) == []


def _craft(folder: Path, case: str) -> None:
    """Damage the widths of layer 0 in both places a pruned folder states them."""
    manifest, config = (
        json.loads((folder / "llmprune.json").read_text()),
        json.loads((folder / "config.json").read_text()),
    )
    value = {"kv0": (1, 0), "heads0": (0, 0), "negative": (2, -3), "string": (2, "12"), "float": (2, 4.5)}
    names = ("num_attention_heads", "num_key_value_heads", "intermediate_size")
    if case == "version":
        manifest["version"], config["llmprune_format"] = "abc", "abc"
    else:
        i, v = value[case]
        manifest["layers"][0][names[i]] = v
        config["llmprune_layers"][0][i] = v
    (folder / "llmprune.json").write_text(json.dumps(manifest))
    (folder / "config.json").write_text(json.dumps(config))


@pytest.mark.parametrize("case", ["kv0", "heads0", "negative", "string", "float", "version"])
def test_crafted_manifests_are_one_clear_error(run_dir, tmp_path, capsys, case):
    """Item 5 / acceptance 3: in `llmprune eval` and in `from_pretrained(..., trust_remote_code=True)`."""
    from transformers import AutoModelForCausalLM

    assert json.loads((run_dir / "llmprune.json").read_text())["stock_loadable"] is False  # it has modeling code
    folder = tmp_path / case
    shutil.copytree(run_dir, folder)
    _craft(folder, case)
    code, err = _run(["eval", str(folder), "--ppl", "wikitext2", "--max-windows", "1"], capsys)
    assert code == 2 and "llmprune.json is not a valid llmprune manifest" in err and "damaged" in err, err
    with pytest.raises(ValueError, match="config.json: llmprune_.*the folder is damaged"):
        AutoModelForCausalLM.from_pretrained(folder, trust_remote_code=True)


def test_an_unexpected_exception_is_an_internal_error_with_its_traceback_saved(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("LLMPRUNE_CACHE", str(tmp_path / "cache"))

    def bug(*args, **kwargs):
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr("llmprune.models.load.resolve_model_source", bug)
    code, err = _run(["groups", "smollm2-135m"], capsys)
    assert code == 3 and "internal error: ZeroDivisionError: a bug" in err
    saved = next((tmp_path / "cache" / "crashes").iterdir())
    assert str(saved) in err and "ZeroDivisionError" in saved.read_text() and "Traceback" in saved.read_text()


def test_sigterm_removes_what_the_process_started(tmp_path):
    """A SIGTERM inside an atomic block: exit 128 + 15, no temporary left, the previous output kept."""
    out = tmp_path / "out"
    code = f"""
import os, signal, sys, time
from llmprune.fsutil import atomic_dir
from llmprune.cli import app

def slow() -> None:
    with atomic_dir({str(out)!r}, "run") as tmp:
        (tmp / "partial").write_bytes(b"x" * 1000)
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(30)

app.app.command(name="slow")(slow)
app.main(["slow"])
"""
    out.mkdir()
    (out / "old").write_text("previous")
    from llmprune.ownership import write_marker

    write_marker(out, "run")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 128 + 15 and "interrupted by SIGTERM" in proc.stderr, proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    assert (out / "old").read_text() == "previous"
