"""What a family's stock transformers config can say about a pruned model.

A stock llama/mistral/qwen2 config holds ONE width per field (`num_attention_heads`,
`num_key_value_heads`, `intermediate_size`) for every layer, and transformers 5's `LlamaConfig` also
rejects `hidden_size % num_attention_heads != 0` even with an explicit `head_dim` (e.g. 24 of 32 heads
at hidden 4096, or 7 heads at hidden 576). transformers 5.23 has a `per_layer_config` field
(`HeterogeneousConfigMixin`), but the llama/mistral/qwen2 modeling code builds every layer from the
*global* config, and reading a per-layer field globally raises `AmbiguousGlobalPerLayerAttributeError`,
so it cannot build heterogeneous layers (checked on 5.23).

A pruned shape is *stock-loadable* when all layers have the same widths AND the family's config class
accepts them: `check_stock`. The planner's `--uniform` mode picks head counts from
`uniform_head_options`.
"""

from __future__ import annotations

from dataclasses import dataclass

from llmprune.arch.family import Family
from llmprune.arch.shapes import LayerShape

NORM_EPS = "some norms need an eps other than the config's rms_norm_eps (a stock config holds one)"
ADDED = "a stock config cannot state alone (its bias flags would add biases to other projections too)"


@dataclass(frozen=True)
class StockCheck:
    """Whether a pruned shape can be written as a stock config, and why not."""

    ok: bool
    uniform: bool
    reason: str = ""


def config_error(family: Family, d: dict) -> str:
    """The validation error the family's config class raises for `d`, or "" if it accepts it."""
    try:
        family.config_class().from_dict(dict(d))
    except Exception as e:  # transformers raises ValueError or StrictDataclass errors
        return str(e).strip().splitlines()[-1].strip()
    return ""


def default_config(family: Family) -> dict:
    """The family's default config as a dict (what a stock config holds besides the shapes)."""
    return family.config_class()().to_dict()


def check_stock(family: Family, base: dict, shapes: list[LayerShape]) -> StockCheck:
    """Can `shapes` (one per remaining layer) be written into `base` (a config dict) as a stock config?"""
    uniform = len(set(shapes)) == 1
    if not uniform:
        n = len(set(shapes))
        return StockCheck(False, False, f"layers have {n} different widths; a stock config holds one width per field")
    err = config_error(family, {**base, **shapes[0].to_json()})
    return StockCheck(not err, True, err)


def uniform_head_options(
    family: Family, *, hidden_size: int, head_dim: int, kv_heads: int, group_size: int
) -> list[tuple[int, int]]:
    """(query heads, KV heads) pairs a uniform GQA-valid pruning of a layer with `kv_heads` KV heads of
    `group_size` query heads each can keep that the family's stock config accepts, widest first."""
    base = {**default_config(family), "hidden_size": hidden_size, "head_dim": head_dim}
    out = []
    for kv in range(kv_heads, 0, -1):
        for g in range(group_size, 0, -1):
            if not config_error(family, {**base, "num_attention_heads": kv * g, "num_key_value_heads": kv}):
                out.append((kv * g, kv))
    return sorted(set(out), reverse=True)
