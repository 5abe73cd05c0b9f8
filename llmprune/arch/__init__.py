"""One description of each model family, read by every step (see `family.py`; entries in `families.py`).

- `Family`, `register_family`, `family_for(model_type)`, `family_of(model or config)`: the registry.
- `describe(model) -> Layout`: the family plus the shapes read from the modules (`LayerShape` per layer).
- `ROLES`, `READERS`, `WRITERS`: the projection roles every family names (q, k, v, o, gate, up, down).

The registry and `LayerShape` import without torch; the model-reading helpers (`layout.py`) load it
on first use.
"""

from typing import Any

from llmprune.arch import families as _families  # noqa: F401  (fills the registry)
from llmprune.arch.family import (
    ATTN_ROLES,
    FAMILIES,
    MLP_ROLES,
    READERS,
    ROLES,
    WRITERS,
    Family,
    family_for,
    family_of,
    register_family,
)
from llmprune.arch.shapes import LayerShape, config_head_dim

_LAYOUT = (
    "Layout",
    "decoder_layers",
    "describe",
    "get_module",
    "layer_norm_eps",
    "module_shapes",
    "module_widths",
    "set_embed_scale_",
    "set_layer_shape_",
)

__all__ = [
    "ATTN_ROLES",
    "FAMILIES",
    "MLP_ROLES",
    "READERS",
    "ROLES",
    "WRITERS",
    "Family",
    "LayerShape",
    "Layout",
    "config_head_dim",
    "decoder_layers",
    "describe",
    "family_for",
    "family_of",
    "get_module",
    "layer_norm_eps",
    "module_shapes",
    "module_widths",
    "register_family",
    "set_embed_scale_",
    "set_layer_shape_",
]


def __getattr__(name: str) -> Any:
    if name in _LAYOUT:
        from llmprune.arch import layout

        return getattr(layout, name)
    raise AttributeError(f"module 'llmprune.arch' has no attribute {name!r}")
