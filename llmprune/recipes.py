"""Recipes: YAML files that describe a whole job (prune -> [recover -> merge] -> eval), validated on load.

Unknown keys and bad values raise an error naming the field. `--set a.b=value` overrides any field
(the value is parsed as YAML, so numbers, booleans, null and lists work).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from llmprune.config import PruneConfig
from llmprune.errors import LlmpruneError, describe_validation

RECIPE_VERSION = 1


class EvalConfig(BaseModel):
    """What to measure before and after pruning."""

    model_config = ConfigDict(extra="forbid")
    ppl: list[str] = Field(default_factory=lambda: ["wikitext2"], description="perplexity datasets")
    seq_len: int = Field(128, ge=2, description="perplexity window length")
    max_windows: int | None = Field(256, ge=1, description="score only the first N windows (null: all)")
    batch_size: int = Field(8, ge=1, description="windows per forward pass")
    tasks: list[str] = Field(default_factory=list, description="zero-shot tasks (boolq, piqa, ...)")
    limit: int | None = Field(None, ge=1, description="examples per task (null: all)")
    scorer: Literal["shared-prefix", "lm-eval"] = Field(
        "shared-prefix", description="zero-shot scorer (as llmprune eval --scorer)"
    )
    before: bool = Field(True, description="also evaluate the dense model, for a before/after table")


class Recipe(BaseModel):
    model_config = ConfigDict(extra="forbid")
    version: int = Field(RECIPE_VERSION, description="recipe format version")
    name: str | None = Field(None, description="run name (default: the file name)")
    model: str = Field(..., description="hub id, local folder, .gguf file or alias (smollm2-135m)")
    dtype: str = Field("auto", description="auto, float32, bfloat16, float16")
    device: str = Field("auto", description="auto, cpu, cuda")
    prune: PruneConfig = Field(default_factory=PruneConfig)
    eval: EvalConfig | None = Field(None, description="evaluation; omit to skip")
    recovery: dict[str, Any] | None = Field(None, description="LoRA recovery settings; omit to skip")

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
    if not isinstance(version, int) or version > RECIPE_VERSION:
        raise LlmpruneError(
            f"{source}: recipe version {version!r} is not supported (this llmprune reads {RECIPE_VERSION})"
        )
    try:
        return Recipe.model_validate(data)
    except ValidationError as e:
        raise LlmpruneError(f"{source}: invalid recipe: {describe_validation(e.errors())}") from e


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
