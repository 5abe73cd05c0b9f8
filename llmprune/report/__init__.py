"""Run reports: `report.md` and PNG plots from the artefacts of a `llmprune run` / `prune` folder."""

from llmprune.report.artifacts import RunArtifacts, load_run
from llmprune.report.build import write_report

__all__ = ["RunArtifacts", "load_run", "write_report"]
