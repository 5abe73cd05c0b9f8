"""Read what a run folder holds (`llmprune.runfolder`): report.json, plan.json, the manifest, scores, bench.json.

`report.json` and `plan.json` are required (they are what makes a folder a run); the manifest, the
importance scores and a `bench.json` (from `llmprune bench --json RUN_DIR/bench.json`) are optional.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

from llmprune.errors import LlmpruneError
from llmprune.prune.plan import PrunePlan
from llmprune.runfolder import PLAN, REPORT, Manifest, RunFolder, RunReport

METRIC_SECTIONS = ("before", "after", "recovered")  # RunReport sections holding evaluate() results


@dataclass
class RunArtifacts:
    path: Path
    report: RunReport
    plan: PrunePlan
    manifest: Manifest | None = None
    scores: dict[str, torch.Tensor] = field(default_factory=dict)
    bench: dict | None = None

    @property
    def name(self) -> str:
        return self.path.name

    def metrics(self) -> dict[str, dict]:
        """{section: evaluate() result} for before / after / recovered, in that order, where present."""
        out = {}
        for key in METRIC_SECTIONS:
            section = getattr(self.report, key)
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


def load_run(path: str | Path) -> RunArtifacts:
    """Load the artefacts of run folder `path`; raises LlmpruneError naming what is missing or damaged."""
    folder = RunFolder(path)
    path = folder.path
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
    return RunArtifacts(
        path=path,
        report=folder.read_report(),
        plan=folder.read_plan(),
        manifest=folder.read_manifest() if folder.is_pruned else None,
        scores=folder.read_scores(),
        bench=folder.read_bench(),
    )
