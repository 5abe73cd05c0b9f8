"""Read what a run folder holds: report.json, plan.json, llmprune.json, scores.safetensors, bench.json.

`report.json` and `plan.json` are required (they are what makes a folder a run); the manifest, the
importance scores and a `bench.json` (from `llmprune bench --json RUN_DIR/bench.json`) are optional.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import torch

from llmprune.errors import LlmpruneError
from llmprune.plan import PrunePlan

REPORT, PLAN, MANIFEST, SCORES, BENCH = "report.json", "plan.json", "llmprune.json", "scores.safetensors", "bench.json"
METRIC_SECTIONS = ("before", "after", "recovered")  # report.json sections holding evaluate() results


@dataclass
class RunArtifacts:
    path: Path
    report: dict
    plan: PrunePlan
    manifest: dict | None = None
    scores: dict[str, torch.Tensor] = field(default_factory=dict)
    bench: dict | None = None

    @property
    def name(self) -> str:
        return self.path.name

    def metrics(self) -> dict[str, dict]:
        """{section: evaluate() result} for before / after / recovered, in that order, where present."""
        out = {}
        for key in METRIC_SECTIONS:
            section = self.report.get(key)
            if isinstance(section, dict):
                section = _evaluation_of(section)
                if section is not None:
                    out[key] = section
        return out


def _evaluation_of(section: dict) -> dict | None:
    """The section itself when it holds ppl / tasks, else a nested `eval` / `after` holding them."""
    if "ppl" in section or "tasks" in section:
        return section
    for key in ("eval", "after"):
        inner = section.get(key)
        if isinstance(inner, dict) and ("ppl" in inner or "tasks" in inner):
            return inner
    return None


def _read_json(file: Path) -> dict:
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise LlmpruneError(f"{file} is not valid JSON ({e}); the run folder is damaged, run it again") from e
    if not isinstance(data, dict):
        raise LlmpruneError(f"{file} should hold a JSON object, got {type(data).__name__}")
    return data


def load_run(path: str | Path) -> RunArtifacts:
    """Load the artefacts of run folder `path`; raises LlmpruneError naming what is missing or damaged."""
    path = Path(path).expanduser()
    if not path.exists():
        raise LlmpruneError(f"run folder not found: {path}; pass the --out folder of `llmprune run` or `prune`")
    if not path.is_dir():
        raise LlmpruneError(f"{path} is a file; pass the run folder (the --out of `llmprune run` or `prune`)")
    for name in (REPORT, PLAN):
        if not (path / name).is_file():
            raise LlmpruneError(
                f"{path} is not a run folder: it has no {name}. Pass the --out folder of `llmprune run` or "
                "`llmprune prune` (it holds report.json and plan.json)"
            )
    report = _read_json(path / REPORT)
    if "params_before" not in report or "params_after" not in report:
        raise LlmpruneError(f"{path / REPORT} lacks params_before / params_after; it was not written by llmprune")
    plan = PrunePlan.from_dict(_read_json(path / PLAN))
    manifest = _read_json(path / MANIFEST) if (path / MANIFEST).is_file() else None
    scores: dict[str, torch.Tensor] = {}
    if (path / SCORES).is_file():
        from safetensors.torch import load_file

        try:
            scores = load_file(str(path / SCORES))
        except Exception as e:  # safetensors raises its own error types
            raise LlmpruneError(f"{path / SCORES} cannot be read ({e}); the run folder is damaged") from e
    bench = _read_json(path / BENCH) if (path / BENCH).is_file() else None
    return RunArtifacts(path=path, report=report, plan=plan, manifest=manifest, scores=scores, bench=bench)
