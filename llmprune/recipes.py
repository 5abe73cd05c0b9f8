"""Recipes: YAML files that describe a whole job (prune -> [recover -> merge] -> eval), validated on load.

A recipe is the configs of the steps it runs (`PruneConfig`, `EvalConfig`, `RecoveryConfig`), each
validated by its own pydantic model. Unknown keys and bad values raise an error naming the field.
`--set a.b=value` overrides any field (the value is parsed as YAML, so numbers, booleans, null and
lists work). Reading a recipe does not load torch.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator

from llmprune.errors import LlmpruneError, validate_config
from llmprune.eval.config import EvalConfig
from llmprune.models.options import DTYPE_HELP, DtypeName, check_device
from llmprune.prune.config import PruneConfig
from llmprune.recovery.config import RecoveryConfig

__all__ = ["EvalConfig", "Recipe", "load_recipe", "parse_overrides", "recipe_from_dict"]

RECIPE_VERSION = 1


class Recipe(BaseModel):
    """A whole job: the model, how to prune it, and optionally how to evaluate and recover it."""

    model_config = ConfigDict(extra="forbid")
    version: int = Field(RECIPE_VERSION, ge=1, le=RECIPE_VERSION, description="recipe format version")
    name: str | None = Field(None, description="run name (default: the file name)")
    model: str = Field(..., description="hub id, local folder, .gguf file or alias (smollm2-135m)")
    dtype: DtypeName = Field("auto", description=DTYPE_HELP)
    device: str = Field("auto", description="auto, cpu, cuda, cuda:N")
    prune: PruneConfig = Field(default_factory=PruneConfig)
    eval: EvalConfig | None = Field(None, description="evaluation (llmprune.eval.EvalConfig); omit to skip")
    recovery: RecoveryConfig | None = Field(None, description="LoRA recovery (RecoveryConfig); omit to skip")

    @field_validator("device")
    @classmethod
    def _device(cls, v: str) -> str:
        return check_device(v)

    def yaml(self) -> str:
        return yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False)


def _set(tree: dict, dotted: str, value: Any) -> None:
    keys = dotted.split(".")
    node = tree
    for k in keys[:-1]:
        if node.get(k) is None:
            node[k] = {}
        if not isinstance(node[k], dict):
            raise LlmpruneError(f"--set {dotted}: {k!r} is not a section")
        node = node[k]
    node[keys[-1]] = value


def parse_overrides(items: list[str]) -> list[tuple[str, Any]]:
    out = []
    for item in items:
        if "=" not in item:
            raise LlmpruneError(f"--set expects key=value (e.g. prune.ratio=0.3), got {item!r}")
        key, raw = item.split("=", 1)
        try:
            value = yaml.safe_load(raw) if raw != "" else ""
        except yaml.YAMLError as e:
            raise LlmpruneError(f"--set {key}: cannot parse value {raw!r}: {e}") from e
        out.append((key.strip(), value))
    return out


def recipe_from_dict(data: dict, *, source: str = "recipe") -> Recipe:
    version = data.get("version", RECIPE_VERSION)
    if not isinstance(version, int) or isinstance(version, bool) or not 1 <= version <= RECIPE_VERSION:
        raise LlmpruneError(
            f"{source}: recipe version {version!r} is not supported (this llmprune reads {RECIPE_VERSION})"
        )
    return validate_config(Recipe, data, what=f"recipe {source}")


def load_recipe(path: str | Path, overrides: list[str] | None = None) -> Recipe:
    """Read, override (`key=value` strings) and validate a recipe file."""
    path = Path(path)
    if not path.is_file():
        raise LlmpruneError(f"recipe not found: {path}; see recipes/ for examples")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise LlmpruneError(f"{path} is not valid YAML: {e}") from e
    if not isinstance(data, dict):
        raise LlmpruneError(f"{path}: a recipe is a YAML mapping of fields")
    for key, value in parse_overrides(overrides or []):
        _set(data, key, value)
    data.setdefault("name", path.stem)
    return recipe_from_dict(data, source=str(path))
