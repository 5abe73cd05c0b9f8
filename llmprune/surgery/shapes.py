"""The config moves with the tensors: write a model's true shapes into its Hugging Face config.

What the config can say. A stock llama/mistral/qwen2 config holds ONE width per field
(`num_attention_heads`, `num_key_value_heads`, `intermediate_size`) for every layer, and transformers
5's `LlamaConfig` also rejects `hidden_size % num_attention_heads != 0` even with an explicit
`head_dim` (e.g. 24 of 32 heads at hidden 4096, or 7 heads at hidden 576). transformers 5.23 has a
`per_layer_config` field (`HeterogeneousConfigMixin`), but the llama/mistral/qwen2 modeling code
builds every layer from the *global* config, and reading a per-layer field globally raises
`AmbiguousGlobalPerLayerAttributeError`, so it cannot build heterogeneous layers (checked on 5.23).

Therefore:
- *stock-loadable*: all remaining layers have the same widths AND the config class accepts them.
  The config then states the true widths and `AutoModelForCausalLM.from_pretrained` loads the folder.
- otherwise the config is a valid *skeleton*: `hidden_size`, `head_dim`, `num_hidden_layers`,
  `rms_norm_eps` and `layer_types` are true; the per-layer fields hold the widths of the widest layer
  when the config class accepts them, else 1 query head / 1 KV head. The per-layer truth is in
  `llmprune.json` (read by `load_pruned`); stock `from_pretrained` refuses such a folder with a
  size-mismatch error instead of loading wrong weights.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from llmprune.plan import PrunePlan
from llmprune.surgery import arch
from llmprune.surgery.arch import LayerWidths

PER_LAYER_FIELDS = ("num_attention_heads", "num_key_value_heads", "intermediate_size")


@dataclass(frozen=True)
class StockCheck:
    """Whether a pruned shape can be written as a stock config, and why not."""

    ok: bool
    uniform: bool
    reason: str = ""


def config_error(config_cls: type, d: dict) -> str:
    """The validation error the config class raises for `d`, or "" if it accepts it."""
    try:
        config_cls.from_dict(dict(d))
    except Exception as e:  # transformers raises ValueError or StrictDataclass errors
        return str(e).strip().splitlines()[-1].strip()
    return ""


def check_stock(config_cls: type, base: dict, widths: list[LayerWidths]) -> StockCheck:
    """Can `widths` (one per remaining layer) be written into `base` (a config dict) as a stock config?"""
    uniform = len(set(widths)) == 1
    if not uniform:
        n = len(set(widths))
        return StockCheck(False, False, f"layers have {n} different widths; a stock config holds one width per field")
    err = config_error(config_cls, {**base, **widths[0].to_dict()})
    return StockCheck(not err, True, err)


def stock_loadable(plan: PrunePlan) -> StockCheck:
    """Will the model that `plan` produces load with stock `AutoModelForCausalLM.from_pretrained`?

    Example: for SmolLM2 (hidden 576, 9 heads / 3 KV heads) removing one query head per KV group in
    every layer leaves 6 heads (576 % 6 == 0): ok. Removing one KV head (3 query heads) per layer
    leaves 6 too; removing 2 of 9 heads is impossible under GQA anyway.
    """
    from transformers import AutoConfig

    plan.validate()
    b = plan.base
    widths = [
        LayerWidths(
            num_attention_heads=b.num_heads - len(lp.heads),
            num_key_value_heads=b.num_kv_heads - len(lp.kv_heads),
            intermediate_size=b.intermediate_size - len(lp.mlp_channels),
        )
        for lp in (plan.layer(i) for i in range(b.num_layers))
        if not lp.drop
    ]
    config = AutoConfig.for_model(b.model_type)
    base = {
        **config.to_dict(),
        "hidden_size": b.hidden_size - len(plan.hidden_channels),
        "head_dim": b.head_dim,
        "num_hidden_layers": len(widths),
    }
    base.pop("layer_types", None)
    return check_stock(type(config), base, widths)


def uniform_head_options(plan_base, *, hidden_size: int | None = None) -> list[tuple[int, int]]:
    """(query heads, KV heads) pairs a uniform GQA-valid pruning of `plan_base` can keep that a stock
    config accepts, widest first. `hidden_size` defaults to the base hidden size."""
    from transformers import AutoConfig

    b = plan_base
    config = AutoConfig.for_model(b.model_type)
    base = {**config.to_dict(), "hidden_size": hidden_size or b.hidden_size, "head_dim": b.head_dim}
    out = []
    for kv in range(b.num_kv_heads, 0, -1):
        for g in range(b.group_size, 0, -1):
            d = {**base, "num_attention_heads": kv * g, "num_key_value_heads": kv}
            if not config_error(type(config), d):
                out.append((kv * g, kv))
    return sorted(set(out), reverse=True)


def sync_config_(model: nn.Module) -> StockCheck:
    """Write the model's true shapes (read from its tensors) into `model.config`; see the module doc."""
    config = model.config
    widths = arch.all_widths(model)
    config.hidden_size = arch.hidden_size(model)
    config.head_dim = arch.head_dim(model)
    config.num_hidden_layers = len(widths)
    config.rms_norm_eps = float(arch.decoder(model).norm.variance_epsilon)
    base = config.to_dict()
    check = check_stock(type(config), base, widths)
    if check.ok:
        skeleton = widths[0]
    else:
        skeleton = max(widths, key=lambda w: (w.num_attention_heads, w.num_key_value_heads))
        skeleton = LayerWidths(
            skeleton.num_attention_heads, skeleton.num_key_value_heads, max(w.intermediate_size for w in widths)
        )
        if config_error(type(config), {**base, **skeleton.to_dict()}):
            skeleton = LayerWidths(1, 1, skeleton.intermediate_size)
    for k, v in skeleton.to_dict().items():
        setattr(config, k, v)
    return check
