"""`LayerShape`: the widths of one decoder layer, the one shape type every step shares (no torch needed)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# (output width, input width) of each projection role, by name: "hidden" (the residual stream), "q"
# (query heads * head_dim), "kv" (KV heads * head_dim), "inter" (MLP channels). The generated modeling
# file (`llmprune.surgery.remote_code`) carries this table too.
PROJ_WIDTHS: dict[str, tuple[str, str]] = {
    "q": ("q", "hidden"),
    "k": ("kv", "hidden"),
    "v": ("kv", "hidden"),
    "o": ("hidden", "q"),
    "gate": ("inter", "hidden"),
    "up": ("inter", "hidden"),
    "down": ("hidden", "inter"),
}


@dataclass(frozen=True)
class LayerShape:
    """Widths of one decoder layer."""

    heads: int
    kv_heads: int
    intermediate: int

    @property
    def group_size(self) -> int:
        """Query heads per KV head (1 for multi-head attention)."""
        return self.heads // self.kv_heads

    def query_heads(self, kv: int) -> range:
        """The query heads that read KV head `kv` (transformers' `repeat_kv`: head h reads h // group)."""
        g = self.group_size
        return range(kv * g, (kv + 1) * g)

    def widths(self, hidden: int, head_dim: int) -> dict[str, int]:
        """The named widths of `PROJ_WIDTHS` for a layer of this shape."""
        return {
            "hidden": hidden,
            "q": self.heads * head_dim,
            "kv": self.kv_heads * head_dim,
            "inter": self.intermediate,
        }

    def proj_shape(self, role: str, hidden: int, head_dim: int) -> tuple[int, int]:
        """(out_features, in_features) of projection `role` in a layer of this shape."""
        widths = self.widths(hidden, head_dim)
        n_out, n_in = PROJ_WIDTHS[role]
        return widths[n_out], widths[n_in]

    def to_json(self) -> dict[str, int]:
        """The config-style field names used in manifests and generated configs."""
        return {
            "num_attention_heads": self.heads,
            "num_key_value_heads": self.kv_heads,
            "intermediate_size": self.intermediate,
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> LayerShape:
        return cls(int(d["num_attention_heads"]), int(d["num_key_value_heads"]), int(d["intermediate_size"]))


def config_head_dim(config: Any) -> int:
    return getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
