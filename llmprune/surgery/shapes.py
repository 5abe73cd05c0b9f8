"""The config moves with the tensors: write a model's true shapes into its Hugging Face config.

What a stock config can say is `llmprune.arch.stock`'s business. Here:
- *stock-loadable* (all remaining layers have the same widths AND the family's config class accepts
  them): the config states the true widths and `AutoModelForCausalLM.from_pretrained` loads the folder;
- otherwise the config is a valid *skeleton*: `hidden_size`, `head_dim`, `num_hidden_layers`, the norm
  eps and `layer_types` are true; the per-layer fields hold the widths of the widest layer when the
  config class accepts them, else 1 query head / 1 KV head. The per-layer truth is in `llmprune.json`
  (read by `load_pruned`); stock `from_pretrained` refuses such a folder with a size-mismatch error
  instead of loading wrong weights.
"""

from __future__ import annotations

from torch import nn

from llmprune.arch import LayerShape, describe
from llmprune.arch.stock import StockCheck, check_stock, config_error


def sync_config_(model: nn.Module) -> StockCheck:
    """Write the model's true shapes (read from its tensors) into `model.config`; see the module doc."""
    lay = describe(model)
    fam = lay.family
    config = model.config
    config.hidden_size = lay.hidden_size
    config.head_dim = lay.head_dim
    config.num_hidden_layers = lay.num_layers
    setattr(config, fam.config_norm_eps, float(getattr(model.get_submodule(fam.final_norm), fam.norm_eps)))
    base = config.to_dict()
    shapes = list(lay.layers)
    check = check_stock(fam, base, shapes)
    if check.ok:
        skeleton = shapes[0]
    else:
        widest = max(shapes, key=lambda s: (s.heads, s.kv_heads))
        skeleton = LayerShape(widest.heads, widest.kv_heads, max(s.intermediate for s in shapes))
        if config_error(fam, {**base, **skeleton.to_json()}):
            skeleton = LayerShape(1, 1, skeleton.intermediate)
    for k, v in skeleton.to_json().items():
        setattr(config, k, v)
    return check
