"""Frozen, serialisable descriptions of coupled structures (groups) in a causal LM.

A *group* is a set of parameter slices that must be pruned together. It has `units` prunable units
(query heads, KV heads, MLP channels, hidden channels, or a whole layer); unit `u` of the group maps
to the slice `[offset + u*unit_size, offset + (u+1)*unit_size)` along `dim` of every member.
Members are listed in execution order, so the last member is the last executing structure
(the `last` aggregation uses it).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Literal

GroupKind = Literal["mlp_channel", "attn_head", "kv_group", "hidden", "layer"]
GROUP_KINDS: tuple[str, ...] = ("mlp_channel", "attn_head", "kv_group", "hidden", "layer")

WHOLE = -1  # Member.dim for "the whole tensor" (layer groups)


def group_id(kind: str, layer: int | None = None) -> str:
    """The id of the group of `kind` in decoder layer `layer` (None: model-wide): `layers.3.mlp_channel`."""
    return kind if layer is None else f"layers.{layer}.{kind}"


def parse_group_id(gid: str) -> tuple[str, int | None]:
    """(kind, layer) of a `group_id`; ValueError for anything else."""
    parts = gid.split(".")
    if len(parts) == 1 and parts[0] in GROUP_KINDS:
        return parts[0], None
    if len(parts) == 3 and parts[0] == "layers" and parts[1].isdigit() and parts[2] in GROUP_KINDS:
        return parts[2], int(parts[1])
    raise ValueError(f"not a group id: {gid!r}")


@dataclass(frozen=True)
class Member:
    """One parameter slice of a group: `module.param`, sliced along `dim`."""

    module: str  # e.g. "model.layers.3.self_attn.q_proj"
    param: str  # "weight" or "bias"
    dim: int  # 0 = output rows, 1 = input columns, WHOLE = entire tensor
    unit_size: int = 1  # elements along `dim` per unit (head_dim for heads, g*head_dim for KV groups)
    offset: int = 0

    @property
    def name(self) -> str:
        return f"{self.module}.{self.param}"

    def indices(self, unit: int) -> range:
        """Indices along `dim` that unit `unit` owns."""
        start = self.offset + unit * self.unit_size
        return range(start, start + self.unit_size)


@dataclass(frozen=True)
class Group:
    kind: GroupKind
    layer: int | None  # decoder layer index; None for model-wide groups (hidden)
    units: int  # number of prunable units
    members: tuple[Member, ...] = field(default_factory=tuple)

    @property
    def id(self) -> str:
        return group_id(self.kind, self.layer)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["id"] = self.id
        return d

    @classmethod
    def from_dict(cls, d: dict) -> Group:
        members = tuple(Member(**m) for m in d["members"])
        return cls(kind=d["kind"], layer=d["layer"], units=d["units"], members=members)
