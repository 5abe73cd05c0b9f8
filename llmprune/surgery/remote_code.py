"""A tiny `modeling_llmprune.py` written next to non-stock folders, for `trust_remote_code=True` loaders.

Stock transformers cannot build layers of different widths (see `llmprune.arch.stock`), so a
non-uniform folder loads through `llmprune.load_pruned`. For tools that only take a path (lm-eval's
`hf` model, `pipeline`, ...), the folder also carries this file and `config.json` gets
`auto_map` + `llmprune_layers`: `AutoModelForCausalLM.from_pretrained(path, trust_remote_code=True)`
then builds the family's stock class and resizes each layer. The file is generated from the family's
description (`llmprune.arch`: class, module paths, projection widths) and depends on transformers only.
Without `trust_remote_code` transformers ignores `auto_map` for these built-in model types, and the
skeleton config makes stock loading fail with a size mismatch instead of loading wrong weights.
"""

from __future__ import annotations

import json
from pathlib import Path

from llmprune.arch import ROLES, Family, LayerShape
from llmprune.arch.shapes import PROJ_WIDTHS
from llmprune.runfolder import MODELING

MODULE = MODELING.removesuffix(".py")
CLASS = "LlmprunedForCausalLM"

_TEMPLATE = '''"""Written by llmprune: {family} with per-layer widths (config.llmprune_layers = [[heads, kv_heads, intermediate], ...]).

Load with AutoModelForCausalLM.from_pretrained(path, trust_remote_code=True), or with llmprune.load_pruned(path).
"""

from torch import nn
from {module} import {base} as _Base

_LAYERS, _ATTN, _MLP = {layers!r}, {attn!r}, {mlp!r}
# (path in a decoder layer, output width, input width) of every projection
_PROJECTIONS = {projections}


class {cls}(_Base):
    def __init__(self, config):
        super().__init__(config)
        for layer, (heads, kv, inter) in zip(self.get_submodule(_LAYERS), config.llmprune_layers, strict=True):
            attn, mlp = layer.get_submodule(_ATTN), layer.get_submodule(_MLP)
            hd = attn.head_dim
            width = {{"hidden": config.hidden_size, "q": heads * hd, "kv": kv * hd, "inter": inter}}
            for path, n_out, n_in in _PROJECTIONS:
                owner, _, name = path.rpartition(".")
                mod = layer.get_submodule(owner)
                old = getattr(mod, name)
                new = nn.Linear(width[n_in], width[n_out], bias=old.bias is not None, dtype=old.weight.dtype)
                setattr(mod, name, new)
            attn.num_key_value_groups = heads // kv
            if hasattr(mlp, "intermediate_size"):
                mlp.intermediate_size = inter
        self.post_init()
'''


def modeling_code(family: Family) -> str:
    """The text of `modeling_llmprune.py` for a model of `family`."""
    rows = "".join(f"    {(family.proj_path(r), *PROJ_WIDTHS[r])!r},\n" for r in ROLES)
    return _TEMPLATE.format(
        family=family,
        module=family.modeling_module,
        base=family.causal_lm,
        layers=family.layers,
        attn=family.attn,
        mlp=family.mlp,
        projections=f"[\n{rows}]",
        cls=CLASS,
    )


def write_remote_code(folder: Path, family: Family, shapes: list[LayerShape]) -> None:
    """Add `modeling_llmprune.py` to `folder` and point its config.json at it (see the module doc)."""
    (folder / MODELING).write_text(modeling_code(family))
    cfg_file = folder / "config.json"
    cfg = json.loads(cfg_file.read_text())
    cfg["auto_map"] = {"AutoModelForCausalLM": f"{MODULE}.{CLASS}"}
    cfg["llmprune_layers"] = [[s.heads, s.kv_heads, s.intermediate] for s in shapes]
    cfg_file.write_text(json.dumps(cfg, indent=2, sort_keys=True) + "\n")
