"""The pruning plan: plain data (JSON) that surgery replays.

A plan records which units go, per layer (query heads, KV heads, MLP channels, or the whole layer)
and model-wide (hidden channels), together with the base shapes it was made for, so that surgery can
check it applies to the model in hand. Indices always refer to the *original* (unpruned) model.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from llmprune.arch.family import FAMILIES, Family, family_for
from llmprune.arch.shapes import LayerShape, config_head_dim
from llmprune.arch.stock import NORM_EPS, StockCheck, check_stock, default_config, uniform_head_options
from llmprune.errors import LlmpruneError
from llmprune.graph.nodes import group_id

PLAN_VERSION = 1


@dataclass(frozen=True)
class BaseShape:
    """Shapes of the model the plan was made for."""

    model_type: str
    num_layers: int
    hidden_size: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    intermediate_size: int

    @property
    def group_size(self) -> int:
        return self.num_heads // self.num_kv_heads

    @property
    def layer_shape(self) -> LayerShape:
        """The shape every layer of the base model has."""
        return LayerShape(self.num_heads, self.num_kv_heads, self.intermediate_size)

    @property
    def family(self) -> Family:
        return family_for(self.model_type)

    def head_options(self, *, hidden_size: int | None = None) -> list[tuple[int, int]]:
        """(query heads, KV heads) a uniform GQA-valid pruning can keep that the family's stock config
        accepts, widest first (`llmprune.arch.stock.uniform_head_options`); hidden size: the base's."""
        return uniform_head_options(
            self.family,
            hidden_size=hidden_size or self.hidden_size,
            head_dim=self.head_dim,
            kv_heads=self.num_kv_heads,
            group_size=self.group_size,
        )

    @classmethod
    def from_config(cls, config: Any) -> BaseShape:
        heads = config.num_attention_heads
        return cls(
            model_type=config.model_type,
            num_layers=config.num_hidden_layers,
            hidden_size=config.hidden_size,
            num_heads=heads,
            num_kv_heads=getattr(config, "num_key_value_heads", None) or heads,
            head_dim=config_head_dim(config),
            intermediate_size=config.intermediate_size,
        )

    @classmethod
    def from_layout(cls, layout: Any) -> BaseShape:
        """The base shape of a model described by `layout` (`llmprune.arch.Layout`); LlmpruneError when its
        layers differ in width (a plan describes a uniform base model)."""
        shape = layout.uniform
        if shape is None:
            raise LlmpruneError(
                "this model's layers already have different widths (it was pruned non-uniformly); a plan "
                "describes a uniform base model: prune the original model instead"
            )
        return cls(
            model_type=layout.family.model_type,
            num_layers=layout.num_layers,
            hidden_size=layout.hidden_size,
            num_heads=shape.heads,
            num_kv_heads=shape.kv_heads,
            head_dim=layout.head_dim,
            intermediate_size=shape.intermediate,
        )


@dataclass(frozen=True)
class LayerPlan:
    """Units removed from one decoder layer (original indices)."""

    layer: int
    heads: tuple[int, ...] = ()  # query heads removed (includes those of removed KV heads)
    kv_heads: tuple[int, ...] = ()  # KV heads removed
    mlp_channels: tuple[int, ...] = ()  # intermediate channels removed
    drop: bool = False  # remove the whole decoder layer


@dataclass(frozen=True)
class PrunePlan:
    base: BaseShape
    layers: tuple[LayerPlan, ...] = ()
    hidden_channels: tuple[int, ...] = ()  # hidden (residual) channels removed, model-wide
    meta: dict = field(default_factory=dict)  # how it was made: importance, ratio, seed, ...
    version: int = PLAN_VERSION

    def layer(self, i: int) -> LayerPlan:
        for lp in self.layers:
            if lp.layer == i:
                return lp
        return LayerPlan(layer=i)

    @property
    def dropped_layers(self) -> tuple[int, ...]:
        return tuple(lp.layer for lp in self.layers if lp.drop)

    def removed_units(self) -> dict[str, tuple[int, ...]]:
        """{group id: removed units} of the graph's groups (`llmprune.graph`): per kept layer `attn_head`
        (query heads), `kv_group` (KV heads) and `mlp_channel`; model-wide `hidden`. Dropped layers are
        `dropped_layers` (their `layer` groups go whole). Indices refer to the original model."""
        out: dict[str, tuple[int, ...]] = {}
        for lp in self.layers:
            if lp.drop:
                continue
            for kind, units in (("attn_head", lp.heads), ("kv_group", lp.kv_heads), ("mlp_channel", lp.mlp_channels)):
                if units:
                    out[group_id(kind, lp.layer)] = tuple(units)
        if self.hidden_channels:
            out[group_id("hidden")] = tuple(self.hidden_channels)
        return out

    def shape_of(self, i: int) -> LayerShape:
        """The widths layer `i` keeps (computed for a dropped layer too)."""
        b, lp = self.base, self.layer(i)
        return LayerShape(
            b.num_heads - len(lp.heads), b.num_kv_heads - len(lp.kv_heads), b.intermediate_size - len(lp.mlp_channels)
        )

    def kept_shapes(self) -> tuple[int, list[int], list[LayerShape]]:
        """(hidden size, kept original layer indices, shape of each kept layer) that the plan produces."""
        kept = [i for i in range(self.base.num_layers) if not self.layer(i).drop]
        return self.base.hidden_size - len(self.hidden_channels), kept, [self.shape_of(i) for i in kept]

    def validate(self) -> None:
        """Raise LlmpruneError if the plan is inconsistent with its base shape (GQA rules included)."""
        b = self.base
        shape = b.layer_shape
        seen = set()
        for lp in self.layers:
            where = f"plan layer {lp.layer}"
            if not 0 <= lp.layer < b.num_layers:
                raise LlmpruneError(f"{where}: layer index out of range 0..{b.num_layers - 1}")
            if lp.layer in seen:
                raise LlmpruneError(f"{where}: listed twice")
            seen.add(lp.layer)
            _check_indices(where, "heads", lp.heads, b.num_heads)
            _check_indices(where, "kv_heads", lp.kv_heads, b.num_kv_heads)
            _check_indices(where, "mlp_channels", lp.mlp_channels, b.intermediate_size)
            if lp.drop:
                continue
            if len(lp.kv_heads) >= b.num_kv_heads:
                raise LlmpruneError(f"{where}: removes every KV head; drop the layer instead")
            if len(lp.mlp_channels) >= b.intermediate_size:
                raise LlmpruneError(f"{where}: removes every MLP channel; drop the layer instead")
            heads = set(lp.heads)
            for kv in lp.kv_heads:
                if not set(shape.query_heads(kv)) <= heads:
                    raise LlmpruneError(f"{where}: KV head {kv} removed but not all of its query heads")
            kept_per_group = {
                kv: sum(1 for h in shape.query_heads(kv) if h not in heads)
                for kv in range(b.num_kv_heads)
                if kv not in lp.kv_heads
            }
            if len(set(kept_per_group.values())) > 1 or 0 in kept_per_group.values():
                raise LlmpruneError(
                    f"{where}: kept query heads per KV group must be equal and non-zero, got {kept_per_group}"
                )
        family = FAMILIES.get(b.model_type)
        if family is not None and family.config_heads:
            kept = [self.shape_of(i) for i in range(b.num_layers) if not self.layer(i).drop]
            if len({(s.heads, s.kv_heads) for s in kept}) > 1:
                raise LlmpruneError(
                    f"{family} models split q/k/v by the config's head counts: every kept layer must keep the "
                    "same number of query and KV heads"
                )
        _check_indices("plan", "hidden_channels", self.hidden_channels, b.hidden_size)
        if len(self.hidden_channels) >= b.hidden_size:
            raise LlmpruneError("plan removes every hidden channel")
        if len(self.dropped_layers) >= b.num_layers:
            raise LlmpruneError("plan drops every decoder layer")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> PrunePlan:
        try:
            version = d.get("version", PLAN_VERSION)
            if version > PLAN_VERSION:
                raise LlmpruneError(f"plan version {version} is newer than this llmprune ({PLAN_VERSION}); upgrade")
            layers = tuple(
                LayerPlan(
                    layer=lp["layer"],
                    heads=tuple(lp.get("heads", ())),
                    kv_heads=tuple(lp.get("kv_heads", ())),
                    mlp_channels=tuple(lp.get("mlp_channels", ())),
                    drop=bool(lp.get("drop", False)),
                )
                for lp in d.get("layers", ())
            )
            plan = cls(
                base=BaseShape(**d["base"]),
                layers=layers,
                hidden_channels=tuple(d.get("hidden_channels", ())),
                meta=dict(d.get("meta", {})),
                version=version,
            )
        except (KeyError, TypeError) as e:
            raise LlmpruneError(f"malformed plan: {e}") from e
        plan.validate()
        return plan

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1)

    def serialize(self) -> str:
        """The exact text of a plan.json file (what `llmprune.runfolder` writes and `digest` hashes)."""
        return self.to_json() + "\n"

    def digest(self) -> str:
        """sha256 of `serialize()`: equals the sha256 of a plan.json file llmprune wrote for this plan."""
        return hashlib.sha256(self.serialize().encode()).hexdigest()

    @classmethod
    def load(cls, path: str | Path) -> PrunePlan:
        path = Path(path)
        if not path.is_file():
            raise LlmpruneError(f"plan file not found: {path}")
        try:
            return cls.from_dict(json.loads(path.read_text()))
        except json.JSONDecodeError as e:
            raise LlmpruneError(f"{path} is not valid JSON: {e}") from e


def stock_loadable(plan: PrunePlan) -> StockCheck:
    """Will the model that `plan` produces load with stock `AutoModelForCausalLM.from_pretrained`?

    Example: for SmolLM2 (hidden 576, 9 heads / 3 KV heads) removing one query head per KV group in
    every layer leaves 6 heads (576 % 6 == 0): ok. Removing one KV head (3 query heads) per layer
    leaves 6 too; removing 2 of 9 heads is impossible under GQA anyway.
    """
    plan.validate()
    hidden, _, shapes = plan.kept_shapes()
    b = plan.base
    fam = b.family
    heads_removed = any(lp.heads for lp in plan.layers if not lp.drop)
    if (plan.hidden_channels and fam.inner_norms) or (heads_removed and fam.proj_norms):
        # the rescaled eps of the norms whose width shrank differs from the others' (surgery/apply.py)
        return StockCheck(False, len(set(shapes)) == 1, NORM_EPS)
    base = {
        **default_config(b.family),
        "hidden_size": hidden,
        "head_dim": b.head_dim,
        "num_hidden_layers": len(shapes),
    }
    base.pop("layer_types", None)
    return check_stock(b.family, base, shapes)


def _check_indices(where: str, name: str, idx: tuple[int, ...], n: int) -> None:
    if len(set(idx)) != len(idx):
        raise LlmpruneError(f"{where}: duplicate indices in {name}")
    bad = [i for i in idx if not 0 <= i < n]
    if bad:
        raise LlmpruneError(f"{where}: {name} indices {bad[:5]} out of range 0..{n - 1}")
