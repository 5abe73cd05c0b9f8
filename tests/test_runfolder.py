"""The run-folder contract: writers and readers share RunFolder's file names and types."""

from __future__ import annotations

import hashlib
import json

import pytest

from llmprune.arch import LayerShape
from llmprune.errors import LlmpruneError
from llmprune.prune.plan import BaseShape, LayerPlan, PrunePlan
from llmprune.runfolder import MANIFEST, PLAN, Manifest, ManifestLayer, RunFolder, RunReport

BASE = BaseShape("llama", num_layers=2, hidden_size=32, num_heads=4, num_kv_heads=2, head_dim=8, intermediate_size=16)


def _manifest(**kw) -> Manifest:
    layers = [ManifestLayer.of(LayerShape(2, 1, 10), 0), ManifestLayer.of(LayerShape(4, 2, 16), 1)]
    fields = dict(model_type="llama", hidden_size=32, head_dim=8, num_hidden_layers=2, uniform=False)
    return Manifest(**fields, stock_loadable=False, params=1000, layers=layers, **kw)


def test_plan_digest_is_one_definition(tmp_path):
    plan = PrunePlan(base=BASE, layers=(LayerPlan(layer=1, mlp_channels=(3, 4)),), meta={"note": "x"})
    folder = RunFolder(tmp_path)
    assert folder.plan_digest() is None
    folder.write_plan(plan)
    assert folder.plan_digest() == plan.digest() == hashlib.sha256((tmp_path / PLAN).read_bytes()).hexdigest()
    assert folder.read_plan() == plan


def test_manifest_and_report_round_trip(tmp_path):
    folder = RunFolder(tmp_path)
    assert not folder.is_pruned and not folder.is_run
    folder.write_manifest(_manifest(extra={"merged_adapter": "adapter"}))
    back = folder.read_manifest()
    assert back.shapes == [LayerShape(2, 1, 10), LayerShape(4, 2, 16)] and back.extra == {"merged_adapter": "adapter"}
    report = RunReport(params_before=10, params_after=8, after={"ppl": {"wikitext2": 9.0}}, custom=1)
    folder.write_report(report)
    folder.write_plan(PrunePlan(base=BASE))
    assert folder.is_pruned and folder.is_run
    again = folder.read_report()
    assert again.after == {"ppl": {"wikitext2": 9.0}} and again.model_extra == {"custom": 1}
    assert "before" not in json.loads((tmp_path / "report.json").read_text())  # absent sections stay absent


@pytest.mark.parametrize(
    "change, message",
    [
        ({"format": "other"}, "has format 'other'"),
        ({"version": 99}, "newer than this llmprune reads"),
        ({"num_hidden_layers": 3}, "2 layers listed but num_hidden_layers is 3"),
        (
            {
                "layers": [
                    {"num_attention_heads": 3, "num_key_value_heads": 2, "intermediate_size": 4, "original_layer": 0}
                ]
            },
            "not a multiple of 2 KV heads",
        ),
        ({"hidden_size": -1}, "hidden_size: Input should be greater than 0"),
    ],
)
def test_damaged_manifests_are_named(tmp_path, change, message):
    data = _manifest().model_dump() | change
    (tmp_path / MANIFEST).write_text(json.dumps(data))
    with pytest.raises(LlmpruneError, match=message):
        RunFolder(tmp_path).read_manifest()


def test_weight_files(tmp_path):
    folder = RunFolder(tmp_path)
    with pytest.raises(LlmpruneError, match="holds no model.safetensors"):
        folder.weight_files()
    (tmp_path / "model.safetensors").write_bytes(b"")
    assert folder.weight_files() == [tmp_path / "model.safetensors"]
    (tmp_path / "model.safetensors.index.json").write_text(
        json.dumps({"weight_map": {"a": "s2", "b": "s1", "c": "s2"}})
    )
    assert folder.weight_files() == [tmp_path / "s1", tmp_path / "s2"]
    (tmp_path / "model.safetensors.index.json").write_text("[]")
    with pytest.raises(LlmpruneError, match="not a safetensors index"):
        folder.weight_files()
