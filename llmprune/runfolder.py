"""The run folder: one definition of the files llmprune writes, and the types writers and readers share.

A *pruned folder* (`llmprune prune`, `run`, `merge`) holds

| file | what | type |
| --- | --- | --- |
| `model.safetensors` (or shards + `model.safetensors.index.json`), `config.json`, `generation_config.json`, tokenizer files | transformers' `save_pretrained` | |
| `plan.json` | the plan that produced the model (indices of the original model) | `PrunePlan` |
| `llmprune.json` | the manifest: format, version, base model, the widths of every layer, loadability | `Manifest` |
| `modeling_llmprune.py` | only when stock transformers cannot build the shapes (`trust_remote_code`) | |
| `.llmprune-output.json` | the ownership marker: kind of output, format version (every folder llmprune writes) | `llmprune.ownership.Marker` |

A *run folder* (`llmprune run`, `prune`) is a pruned folder plus

| file | what | type |
| --- | --- | --- |
| `report.json` | settings, parameter counts, timings, evaluations before / after / recovered | `RunReport` |
| `scores.safetensors` | the importance of every unit, by group id | {group id: tensor} |
| `adapter/` | the LoRA adapter merged into the weights (recipes with `recovery:`) | peft folder |
| `bench.json` | optional, from `llmprune bench --json RUN/bench.json` | `llmprune.perf` result |
| `report/` | optional, from `llmprune report RUN` | markdown + PNGs |

`RunFolder(path)` reads and writes each of them; writers write into a temporary folder
(`llmprune.fsutil.atomic_dir`) that is renamed into place and carries llmprune's ownership marker
(`.llmprune-output.json`, `llmprune.ownership`): only such folders (and empty ones) are ever replaced.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, PositiveInt, ValidationError, model_validator

from llmprune.arch.shapes import LayerShape
from llmprune.errors import LlmpruneError, describe_validation
from llmprune.version import __version__

if TYPE_CHECKING:
    import torch

    from llmprune.arch.layout import Layout
    from llmprune.arch.stock import StockCheck
    from llmprune.prune.plan import PrunePlan

PLAN = "plan.json"
MANIFEST = "llmprune.json"
REPORT = "report.json"
SCORES = "scores.safetensors"
BENCH = "bench.json"
ADAPTER = "adapter"
MODELING = "modeling_llmprune.py"
WEIGHTS = "model.safetensors"
WEIGHTS_INDEX = "model.safetensors.index.json"
SHARD_SIZE = "5GB"  # weights files llmprune writes: at most this (the Hub's usual split; a 7B model in 3 files)


MANIFEST_FORMAT = "llmprune-pruned"
MANIFEST_VERSION = 1


class ManifestLayer(BaseModel):
    """The widths of one kept decoder layer and its index in the original model."""

    model_config = ConfigDict(extra="forbid")
    # strict: widths read from disk must be JSON integers ("4" or 4.5 is a damaged manifest, not a width)
    num_attention_heads: PositiveInt = Field(strict=True)
    num_key_value_heads: PositiveInt = Field(strict=True)
    intermediate_size: PositiveInt = Field(strict=True)
    original_layer: int = Field(ge=0, strict=True)
    # norms (paths from the layer) whose eps differs from the config's: pruning rescales the eps of a norm
    # whose width shrank (OLMo 2's q/k norms, or every hidden norm but not Qwen3's head norms)
    norm_eps: dict[str, float] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _gqa(self) -> ManifestLayer:
        if self.num_attention_heads % self.num_key_value_heads:
            raise ValueError(
                f"{self.num_attention_heads} query heads are not a multiple of {self.num_key_value_heads} KV heads"
            )
        return self

    @property
    def shape(self) -> LayerShape:
        return LayerShape(self.num_attention_heads, self.num_key_value_heads, self.intermediate_size)

    @classmethod
    def of(cls, shape: LayerShape, original_layer: int, norm_eps: dict[str, float] | None = None) -> ManifestLayer:
        return cls(**shape.to_json(), original_layer=original_layer, norm_eps=norm_eps or {})


class Manifest(BaseModel):
    """`llmprune.json`: what `load_pruned` needs to rebuild the model, and how it can be loaded."""

    model_config = ConfigDict(extra="allow")  # fields of newer minor versions are kept, not refused
    format: str = MANIFEST_FORMAT
    version: int = Field(MANIFEST_VERSION, ge=1, strict=True)
    llmprune_version: str = ""
    base_model: str = ""
    model_type: str
    hidden_size: PositiveInt = Field(strict=True)
    head_dim: PositiveInt = Field(strict=True)
    num_hidden_layers: PositiveInt = Field(strict=True)
    uniform: bool
    stock_loadable: bool
    stock_reason: str = ""
    params: int = Field(ge=0)
    layers: list[ManifestLayer]
    extra: dict[str, Any] = Field(default_factory=dict)
    # writer roles ("o", "down") carrying a bias the config does not state (the sequential engine's refit)
    added_biases: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _consistent(self) -> Manifest:
        if self.format != MANIFEST_FORMAT:
            raise ValueError(f"format is {self.format!r}, expected {MANIFEST_FORMAT!r}")
        if len(self.layers) != self.num_hidden_layers:
            raise ValueError(f"{len(self.layers)} layers listed but num_hidden_layers is {self.num_hidden_layers}")
        return self

    @property
    def shapes(self) -> list[LayerShape]:
        return [layer.shape for layer in self.layers]

    @property
    def norm_eps(self) -> list[dict[str, float]]:
        return [layer.norm_eps for layer in self.layers]

    @classmethod
    def of(
        cls, layout: Layout, kept: list[int], stock: StockCheck, norm_eps: list[dict[str, float]], **fields: Any
    ) -> Manifest:
        """The manifest of a model described by `layout` whose layers came from original layers `kept`;
        `norm_eps` per layer: the norms whose eps differs from the config's."""
        return cls(
            llmprune_version=__version__,
            model_type=layout.family.model_type,
            hidden_size=layout.hidden_size,
            head_dim=layout.head_dim,
            num_hidden_layers=layout.num_layers,
            uniform=stock.uniform,
            stock_loadable=stock.ok,
            stock_reason=stock.reason,
            layers=[ManifestLayer.of(s, i, e) for i, s, e in zip(kept, layout.layers, norm_eps, strict=True)],
            **fields,
        )


class RunReport(BaseModel):
    """`report.json` of a run folder. Evaluation sections hold `llmprune.eval.evaluate` results."""

    model_config = ConfigDict(extra="allow")
    recipe: dict[str, Any] | None = None  # the validated recipe (`llmprune.recipes.Recipe`), as JSON
    model: str | None = None
    before: dict[str, Any] | None = None  # the dense model's evaluation
    params_before: int = Field(ge=0)
    params_after: int = Field(ge=0)
    ratio_removed: float | None = None
    seconds: float = 0.0  # pruning (graph, scores, plan, reconstruction, surgery)
    timings: dict[str, float] = Field(default_factory=dict)
    after: dict[str, Any] | None = None  # the pruned model's evaluation
    ppl: dict[str, float] | None = None  # after["ppl"], for quick reading
    recovery: dict[str, Any] | None = None  # LoRA training statistics
    recovered: dict[str, Any] | None = None  # the merged model's evaluation
    ppl_recovered: dict[str, float] | None = None
    total_seconds: float | None = None

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=True)


def _read_json(file: Path, what: str) -> Any:
    try:
        return json.loads(file.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise LlmpruneError(f"{file} is not valid JSON ({e}); the {what} is damaged, write it again") from e


def _validated(cls: type[BaseModel], data: Any, file: Path, what: str) -> Any:
    if not isinstance(data, dict):
        raise LlmpruneError(f"{file} holds a {type(data).__name__}, not a {what}; the folder is damaged")
    try:
        return cls.model_validate(data)
    except ValidationError as e:
        raise LlmpruneError(
            f"{file} is not a valid {what}: {describe_validation(e.errors())}; the folder is damaged, write it again"
        ) from e


@dataclass(frozen=True)
class RunFolder:
    """A pruned or run folder at `path` (see the module doc); nothing is read until asked for."""

    path: Path

    def __init__(self, path: str | Path) -> None:
        object.__setattr__(self, "path", Path(path).expanduser())

    def __truediv__(self, name: str) -> Path:
        return self.path / name

    @property
    def is_pruned(self) -> bool:
        return (self.path / MANIFEST).is_file()

    @property
    def is_run(self) -> bool:
        return (self.path / REPORT).is_file() and (self.path / PLAN).is_file()

    # readers

    def read_manifest(self) -> Manifest:
        file = self.path / MANIFEST
        if not file.is_file():
            raise LlmpruneError(
                f"{self.path} has no {MANIFEST}: it was not written by llmprune; load it with "
                "AutoModelForCausalLM.from_pretrained"
            )
        data = _read_json(file, "folder")
        if isinstance(data, dict) and data.get("format") != MANIFEST_FORMAT:
            raise LlmpruneError(f"{file} has format {data.get('format')!r}, expected {MANIFEST_FORMAT!r}")
        if isinstance(data, dict) and isinstance(data.get("version"), int) and data["version"] > MANIFEST_VERSION:
            raise LlmpruneError(
                f"{file} has version {data['version']}, newer than this llmprune reads ({MANIFEST_VERSION}); "
                "upgrade llmprune"
            )
        return _validated(Manifest, data, file, "llmprune manifest")

    def read_plan(self) -> PrunePlan:
        from llmprune.prune.plan import PrunePlan

        return PrunePlan.load(self.path / PLAN)

    def plan_digest(self) -> str | None:
        """sha256 of plan.json (identifies which pruning a LoRA adapter was trained on); None without one."""
        file = self.path / PLAN
        return hashlib.sha256(file.read_bytes()).hexdigest() if file.is_file() else None

    def read_report(self) -> RunReport:
        file = self.path / REPORT
        if not file.is_file():
            raise LlmpruneError(f"{self.path} has no {REPORT}; pass the --out folder of `llmprune run` or `prune`")
        return _validated(RunReport, _read_json(file, "run folder"), file, "run report")

    def read_scores(self) -> dict[str, torch.Tensor]:
        """The importance scores by group id ({} when the folder has none)."""
        file = self.path / SCORES
        if not file.is_file():
            return {}
        from safetensors.torch import load_file

        try:
            return load_file(str(file))
        except Exception as e:  # safetensors raises its own error types
            raise LlmpruneError(f"{file} cannot be read ({e}); the run folder is damaged") from e

    def read_bench(self) -> dict[str, Any] | None:
        file = self.path / BENCH
        if not file.is_file():
            return None
        data = _read_json(file, "run folder")
        if not isinstance(data, dict):
            raise LlmpruneError(f"{file} should hold a JSON object, got {type(data).__name__}")
        return data

    def weight_files(self) -> list[Path]:
        """The safetensors files holding the weights: the shards the index names, else model.safetensors."""
        index = self.path / WEIGHTS_INDEX
        if index.is_file():
            try:
                names = sorted(set(json.loads(index.read_text())["weight_map"].values()))
            except (json.JSONDecodeError, KeyError, TypeError, AttributeError) as e:
                raise LlmpruneError(f"{index} is not a safetensors index ({e!r}); the folder is damaged") from e
            return [self.path / n for n in names]
        if (self.path / WEIGHTS).is_file():
            return [self.path / WEIGHTS]
        raise LlmpruneError(f"{self.path} holds no {WEIGHTS}; llmprune only loads safetensors weights")

    # writers (into a folder being assembled; see llmprune.fsutil.atomic_dir)

    def write_plan(self, plan: PrunePlan) -> None:
        (self.path / PLAN).write_text(plan.serialize())

    def write_manifest(self, manifest: Manifest) -> None:
        data = manifest.model_dump(mode="json")
        for layer in data["layers"]:  # only where a norm's eps differs from the config's
            if not layer["norm_eps"]:
                del layer["norm_eps"]
        if not data["added_biases"]:
            del data["added_biases"]
        (self.path / MANIFEST).write_text(json.dumps(data, indent=1) + "\n")

    def write_report(self, report: RunReport) -> None:
        (self.path / REPORT).write_text(json.dumps(report.to_json(), indent=2) + "\n", encoding="utf-8")

    def write_scores(self, scores: dict[str, torch.Tensor]) -> None:
        from safetensors.torch import save_file

        save_file({k: v.float().contiguous() for k, v in scores.items()}, str(self.path / SCORES))
