"""`llmprune bench`: timing primitives, weights bytes, peak memory, ratios and JSON keys, bad input."""

from __future__ import annotations

import json
import statistics

import pytest
import torch
from safetensors.torch import save_file

from llmprune.errors import LlmpruneError
from llmprune.perf.bench import BenchConfig, bench, prompt_ids, ratios, timed_generate
from llmprune.perf.footprint import disk_bytes, weights_files
from tests.eval.helpers import run_cli

SMALL = dict(num_hidden_layers=2, max_position_embeddings=128)


def test_generate_never_stops_early(make_tiny):
    """Even when the first greedy token is the end-of-text token, exactly `new_tokens` come out."""
    model = make_tiny("llama", seed=2, **SMALL)
    ids = prompt_ids(model.config.vocab_size, 2, 8, torch.device("cpu"))
    with torch.no_grad():
        first = model(ids).logits[0, -1].argmax().item()
    model.config.eos_token_id = model.generation_config.eos_token_id = first
    prefill, tps = timed_generate(model, ids, 5)
    assert prefill > 0 and tps > 0


def test_ratios_by_hand():
    m = {
        "params": 80,
        "disk_bytes": 320,
        "peak_memory_bytes": 900,
        "prefill_s": {"1": 0.5, "16": 4.0},
        "decode_tokens_per_s": {"1": 30.0, "16": 240.0},
    }
    b = {
        "params": 100,
        "disk_bytes": 400,
        "peak_memory_bytes": 1000,
        "prefill_s": {"1": 0.6, "16": 5.0},
        "decode_tokens_per_s": {"1": 25.0, "16": 200.0},
    }
    r = ratios(m, b)
    assert r["params"] == 0.8 and r["disk_bytes"] == 0.8 and r["peak_memory_bytes"] == 0.9
    assert r["prefill_s"] == pytest.approx({"1": 0.5 / 0.6, "16": 0.8})
    assert r["prefill_speedup"] == pytest.approx({"1": 1.2, "16": 1.25})
    assert r["decode_speedup"] == pytest.approx({"1": 1.2, "16": 1.2})
    assert ratios({**m, "peak_memory_bytes": None}, b)["peak_memory_bytes"] is None


def test_weights_files_are_the_model_weights_only(tmp_path, tiny_dir):
    src = tiny_dir("llama", **SMALL)
    save_file({"x": torch.zeros(1000)}, str(src / "scores.safetensors"))  # a run's scores are not weights
    assert weights_files(str(src)) == [src / "model.safetensors"]
    assert disk_bytes(str(src)) == (src / "model.safetensors").stat().st_size
    sharded = tmp_path / "sharded"
    sharded.mkdir()
    (sharded / "config.json").write_text("{}")
    for name in ("a.safetensors", "b.safetensors"):
        save_file({"w": torch.zeros(10)}, str(sharded / name))
    index = {"weight_map": {"w1": "a.safetensors", "w2": "b.safetensors", "w3": "a.safetensors"}}
    (sharded / "model.safetensors.index.json").write_text(json.dumps(index))
    want = sum((sharded / n).stat().st_size for n in ("a.safetensors", "b.safetensors"))
    assert disk_bytes(str(sharded)) == want
    (sharded / "model.safetensors.index.json").unlink()
    with pytest.raises(LlmpruneError, match="holds no model.safetensors"):
        disk_bytes(str(sharded))


def test_bench_with_baseline_json_and_ratios(tmp_path, tiny_dir):
    small = tiny_dir("llama", heads=4, kv_heads=2, **SMALL)
    big = tiny_dir("llama", heads=4, kv_heads=2, intermediate_size=256, **SMALL)
    out = tmp_path / "bench.json"
    argv = ["bench", str(small), "--baseline", str(big), "--prompt-len", "8", "--new-tokens", "3"]
    argv += ["--batch-sizes", "1,2", "--repeats", "3", "--no-memory", "--json", str(out)]
    assert run_cli(argv) in (None, 0)
    res = json.loads(out.read_text())
    assert set(res) >= {"config", "device", "threads", "memory_method", "models", "ratios", "seconds"}
    m, b = res["models"]["model"], res["models"]["baseline"]
    for info in (m, b):
        assert set(info) >= {"spec", "params", "disk_bytes", "peak_memory_bytes", "prefill_s", "decode_tokens_per_s"}
        assert set(info["prefill_s"]) == set(info["decode_tokens_per_s"]) == {"1", "2"}
        assert len(info["runs"]["decode_tokens_per_s"]["2"]) == 3
        assert info["decode_tokens_per_s"]["2"] == pytest.approx(
            statistics.median(info["runs"]["decode_tokens_per_s"]["2"]), rel=1e-4
        )
    assert m["params"] < b["params"] and m["disk_bytes"] < b["disk_bytes"]
    r = res["ratios"]
    assert r["params"] == m["params"] / b["params"] and r["disk_bytes"] == m["disk_bytes"] / b["disk_bytes"]
    for bs in ("1", "2"):
        assert r["decode_speedup"][bs] == m["decode_tokens_per_s"][bs] / b["decode_tokens_per_s"][bs]
        assert r["prefill_s"][bs] == m["prefill_s"][bs] / b["prefill_s"][bs]
    assert r["peak_memory_bytes"] is None  # --no-memory


def test_cpu_peak_memory_covers_the_weights(tiny_dir):
    """The fresh-process probe sees at least the weights (fp32: 4 bytes per parameter) resident."""
    d = tiny_dir("llama", hidden_size=256, intermediate_size=1024, **SMALL)  # ~2.7M params, ~11 MB
    res = bench(str(d), cfg=BenchConfig(prompt_len=8, new_tokens=2, batch_sizes=(1,), repeats=1), progress=False)
    info = res["models"]["model"]
    assert info["params"] * 4 <= info["peak_memory_bytes"] < 20 * info["params"] * 4 + 300 * 2**20
    assert "ratios" not in res


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--baseline", "./no/such/model"], "model path not found"),
        (["--batch-sizes", "1,x"], "--batch-sizes must be comma-separated integers"),
        (["--batch-sizes", "0"], "--batch-sizes: Value error, batch sizes must be positive"),
        (["--new-tokens", "1"], "--new-tokens: Input should be greater than or equal to 2 (got 1)"),
        (["--repeats", "0"], "--repeats: Input should be greater than or equal to 1 (got 0)"),
        (["--device", "cuda:7" if not torch.cuda.is_available() else "nonsense"], "device"),
    ],
)
def test_bad_input_exits_2(tiny_dir, extra, message, capsys):
    d = tiny_dir("llama", **SMALL)
    assert run_cli(["bench", str(d), *extra]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_missing_model_folder(tmp_path, capsys):
    assert run_cli(["bench", str(tmp_path / "nope")]) == 2
    assert "model path not found" in capsys.readouterr().err
