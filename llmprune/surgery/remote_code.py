"""A tiny `modeling_llmprune.py` written next to non-stock folders, for `trust_remote_code=True` loaders.

Stock transformers cannot build layers of different widths (see `llmprune.surgery.shapes`), so a
non-uniform folder loads through `llmprune.load_pruned`. For tools that only take a path (lm-eval's
`hf` model, `pipeline`, ...), the folder also carries this file and `config.json` gets
`auto_map` + `llmprune_layers`: `AutoModelForCausalLM.from_pretrained(path, trust_remote_code=True)`
then builds the family's stock class and resizes each layer. The file depends on transformers only.
Without `trust_remote_code` transformers ignores `auto_map` for these built-in model types, and the
skeleton config makes stock loading fail with a size mismatch instead of loading wrong weights.
"""

from __future__ import annotations

import json
from pathlib import Path

MODULE = "modeling_llmprune"
CLASS = "LlmprunedForCausalLM"

_FAMILY_CLASS = {"llama": "LlamaForCausalLM", "mistral": "MistralForCausalLM", "qwen2": "Qwen2ForCausalLM"}

_TEMPLATE = '''"""Written by llmprune: {family} with per-layer widths (config.llmprune_layers = [[heads, kv_heads, intermediate], ...]).

Load with AutoModelForCausalLM.from_pretrained(path, trust_remote_code=True), or with llmprune.load_pruned(path).
"""

from torch import nn
from transformers.models.{family}.modeling_{family} import {base} as _Base


def _linear(old, n_in=None, n_out=None):
    return nn.Linear(n_in or old.in_features, n_out or old.out_features, bias=old.bias is not None, dtype=old.weight.dtype)


class {cls}(_Base):
    def __init__(self, config):
        super().__init__(config)
        for layer, (heads, kv, inter) in zip(self.model.layers, config.llmprune_layers, strict=True):
            attn, mlp = layer.self_attn, layer.mlp
            hd = attn.head_dim
            attn.q_proj = _linear(attn.q_proj, n_out=heads * hd)
            attn.k_proj = _linear(attn.k_proj, n_out=kv * hd)
            attn.v_proj = _linear(attn.v_proj, n_out=kv * hd)
            attn.o_proj = _linear(attn.o_proj, n_in=heads * hd)
            attn.num_key_value_groups = heads // kv
            mlp.gate_proj = _linear(mlp.gate_proj, n_out=inter)
            mlp.up_proj = _linear(mlp.up_proj, n_out=inter)
            mlp.down_proj = _linear(mlp.down_proj, n_in=inter)
            mlp.intermediate_size = inter
        self.post_init()
'''


def write_remote_code(folder: Path, model_type: str, layers: list[dict]) -> None:
    """Add `modeling_llmprune.py` to `folder` and point its config.json at it (see the module doc)."""
    base = _FAMILY_CLASS[model_type]
    code = _TEMPLATE.format(family=model_type, base=base, cls=CLASS)
    (folder / f"{MODULE}.py").write_text(code)
    cfg_file = folder / "config.json"
    cfg = json.loads(cfg_file.read_text())
    cfg["auto_map"] = {"AutoModelForCausalLM": f"{MODULE}.{CLASS}"}
    cfg["llmprune_layers"] = [
        [w["num_attention_heads"], w["num_key_value_heads"], w["intermediate_size"]] for w in layers
    ]
    cfg_file.write_text(json.dumps(cfg, indent=2, sort_keys=True) + "\n")
