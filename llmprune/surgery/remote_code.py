"""A tiny `modeling_llmprune.py` written next to non-stock folders, for `trust_remote_code=True` loaders.

Stock transformers cannot build layers of different widths (see `llmprune.arch.stock`), nor norms whose
eps differs from the config's, so such a folder loads through `llmprune.load_pruned`. For tools that only
take a path (lm-eval's `hf` model, `pipeline`, ...), the folder also carries this file and `config.json`
gets `auto_map` + `llmprune_layers` (+ `llmprune_norm_eps`): `AutoModelForCausalLM.from_pretrained(path,
trust_remote_code=True)` then builds the family's stock class and resizes each layer. The file is
generated from the family's description (`llmprune.arch`: class, module paths, widths of every Linear and
projection norm) and depends on transformers only. Without `trust_remote_code` transformers ignores
`auto_map` for these built-in model types, and the skeleton config makes stock loading fail with a size
mismatch instead of loading wrong weights.
"""

from __future__ import annotations

import json
from pathlib import Path

from llmprune.arch import Family, LayerShape, module_widths
from llmprune.runfolder import MODELING

MODULE = MODELING.removesuffix(".py")
CLASS = "LlmprunedForCausalLM"
REMOTE_FORMAT = 1  # the meaning of config.json's llmprune_* fields that the generated file reads

_TEMPLATE = '''"""Written by llmprune: {family} with per-layer widths (config.llmprune_layers = [[heads, kv_heads, intermediate], ...]).

Load with AutoModelForCausalLM.from_pretrained(path, trust_remote_code=True), or with llmprune.load_pruned(path).
"""

import torch
from torch import nn
from {module} import {base} as _Base

_LAYERS, _ATTN, _MLP, _EPS = {layers!r}, {attn!r}, {mlp!r}, {eps!r}
# (path in a decoder layer, output widths summed, input width) of every Linear; input None: a norm's weight
_SHAPES = {shapes}


FORMAT = {version}


def _check(config):
    """The widths in config.json are data from disk: refuse anything that cannot describe this model."""
    def bad(what):
        raise ValueError(f"config.json: {{what}}; the folder is damaged, write it again with llmprune")

    version = getattr(config, "llmprune_format", FORMAT)
    if type(version) is not int or not 1 <= version <= FORMAT:
        bad(f"llmprune_format is {{version!r}}, this file reads version {{FORMAT}}")
    widths = getattr(config, "llmprune_layers", None)
    if not isinstance(widths, list) or len(widths) != config.num_hidden_layers:
        bad(f"llmprune_layers must list [heads, kv_heads, intermediate] for each of {{config.num_hidden_layers}} layers")
    for i, row in enumerate(widths):
        if not isinstance(row, list) or len(row) != 3 or any(type(v) is not int or v < 1 for v in row):
            bad(f"llmprune_layers[{{i}}] is {{row!r}}, expected three positive integers [heads, kv_heads, intermediate]")
        if row[0] % row[1]:
            bad(f"llmprune_layers[{{i}}]: {{row[0]}} query heads are not a multiple of {{row[1]}} KV heads")
    norm_eps = getattr(config, "llmprune_norm_eps", None) or [{{}}] * len(widths)
    if not isinstance(norm_eps, list) or len(norm_eps) != len(widths) or not all(
        isinstance(e, dict) and all(isinstance(v, (int, float)) and v > 0 for v in e.values()) for e in norm_eps
    ):
        bad("llmprune_norm_eps must hold, per layer, a mapping of norm paths to positive numbers")
    return widths, norm_eps


class {cls}(_Base):
    def __init__(self, config):
        widths, norm_eps = _check(config)
        super().__init__(config)
        with_bias = set(getattr(config, "llmprune_biases", None) or ())
        for layer, (heads, kv, inter), eps in zip(self.get_submodule(_LAYERS), widths, norm_eps, strict=True):
            attn, mlp = layer.get_submodule(_ATTN), layer.get_submodule(_MLP)
            hd = attn.head_dim
            width = {{"hidden": config.hidden_size, "q": heads * hd, "kv": kv * hd, "inter": inter}}
            for path, outs, n_in in _SHAPES:
                owner, _, name = path.rpartition(".")
                mod = layer.get_submodule(owner)
                old = getattr(mod, name)
                n_out = sum(width[w] for w in outs)
                if n_in is None:
                    old.weight = nn.Parameter(torch.empty(n_out, dtype=old.weight.dtype))
                else:
                    bias = old.bias is not None or path in with_bias
                    new = nn.Linear(width[n_in], n_out, bias=bias, dtype=old.weight.dtype)
                    setattr(mod, name, new)
            for path, value in eps.items():
                setattr(layer.get_submodule(path), _EPS, value)
            attn.num_key_value_groups = heads // kv
            for obj, attr, value in ((attn, "num_key_value_heads", kv), (mlp, "intermediate_size", inter)):
                if hasattr(obj, attr):
                    setattr(obj, attr, value)
        self.post_init()
'''


def modeling_code(family: Family) -> str:
    """The text of `modeling_llmprune.py` for a model of `family`."""
    rows = "".join(f"    {(path, *spec)!r},\n" for path, spec in module_widths(family).items())
    return _TEMPLATE.format(
        family=family,
        module=family.modeling_module,
        base=family.causal_lm,
        layers=family.layers,
        attn=family.attn,
        mlp=family.mlp,
        eps=family.norm_eps,
        shapes=f"[\n{rows}]",
        cls=CLASS,
        version=REMOTE_FORMAT,
    )


def write_remote_code(
    folder: Path,
    family: Family,
    shapes: list[LayerShape],
    norm_eps: list[dict[str, float]] | None = None,
    biases: list[str] | None = None,
) -> None:
    """Add `modeling_llmprune.py` to `folder` and point its config.json at it (see the module doc);
    `norm_eps` gives, per layer, the norms whose eps differs from the config's, `biases` the writer roles
    carrying a bias the config does not state."""
    (folder / MODELING).write_text(modeling_code(family))
    cfg_file = folder / "config.json"
    cfg = json.loads(cfg_file.read_text())
    cfg["auto_map"] = {"AutoModelForCausalLM": f"{MODULE}.{CLASS}"}
    cfg["llmprune_format"] = REMOTE_FORMAT
    cfg["llmprune_layers"] = [[s.heads, s.kv_heads, s.intermediate] for s in shapes]
    if norm_eps and any(norm_eps):
        cfg["llmprune_norm_eps"] = norm_eps
    if biases:
        cfg["llmprune_biases"] = [family.proj_path(r) for r in biases]
    cfg_file.write_text(json.dumps(cfg, indent=2, sort_keys=True) + "\n")
