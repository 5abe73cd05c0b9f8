"""Supported model families and the adapter that reads one model's structure.

A `Family` names the modules of a decoder-only architecture and says which projections carry biases.
`register_family` fills the registry; `family_for(model_type)` looks one up and, for anything else,
raises an error that lists the supported families.

`describe(model)` returns a `Layout`: the family plus the shapes *read from the modules* (not only from
the config), so a model whose layers were pruned to different widths is described correctly. Every
layer must still satisfy the attention invariants: q rows = heads * head_dim, k/v rows = kv_heads *
head_dim, heads divisible by kv_heads.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from torch import nn

from llmprune.errors import LlmpruneError


@dataclass(frozen=True)
class Family:
    """Module names and bias rules of one architecture (Hugging Face `config.model_type`).

    A bias rule is a bool or the name of a boolean config attribute (Llama's `attention_bias`).
    """

    model_type: str
    qkv_bias: bool | str = False  # q/k/v projections (Qwen2: True)
    o_bias: bool | str = False  # o_proj
    mlp_bias: bool | str = False  # gate/up/down projections
    layers: str = "model.layers"
    embed: str = "model.embed_tokens"
    final_norm: str = "model.norm"
    lm_head: str = "lm_head"
    attn: str = "self_attn"
    mlp: str = "mlp"
    input_norm: str = "input_layernorm"
    post_attn_norm: str = "post_attention_layernorm"
    rotary_fn: str = "apply_rotary_pos_emb"  # module-level function in the modeling file (see trace.py)

    def flag(self, config: Any, rule: bool | str) -> bool:
        return bool(getattr(config, rule, False)) if isinstance(rule, str) else rule


FAMILIES: dict[str, Family] = {}


def register_family(family: Family) -> Family:
    """Add `family` to the registry (its model_type must be new)."""
    if family.model_type in FAMILIES:
        raise ValueError(f"family {family.model_type!r} is already registered")
    FAMILIES[family.model_type] = family
    return family


register_family(Family("llama", qkv_bias="attention_bias", o_bias="attention_bias", mlp_bias="mlp_bias"))
register_family(Family("mistral"))
register_family(Family("qwen2", qkv_bias=True))


def family_for(model_type: str | None) -> Family:
    if model_type not in FAMILIES:
        raise LlmpruneError(
            f"unsupported architecture {model_type!r}: llmprune supports the families "
            f"{', '.join(sorted(FAMILIES))} (config.model_type); convert the model or add a Family"
        )
    return FAMILIES[model_type]


@dataclass(frozen=True)
class LayerShape:
    heads: int
    kv_heads: int
    intermediate: int

    @property
    def group_size(self) -> int:
        return self.heads // self.kv_heads


@dataclass(frozen=True)
class Layout:
    """One model's structure: family, shapes per layer, tying and biases."""

    family: Family
    hidden_size: int
    head_dim: int
    vocab_size: int
    layers: tuple[LayerShape, ...]
    tied: bool  # lm_head.weight is the embedding's Parameter
    qkv_bias: bool
    o_bias: bool
    mlp_bias: bool

    @property
    def model_type(self) -> str:
        return self.family.model_type

    @property
    def num_layers(self) -> int:
        return len(self.layers)

    def layer(self, i: int) -> str:
        return f"{self.family.layers}.{i}"

    def proj(self, i: int, name: str) -> str:
        """Module name of projection `name` (q, k, v, o, gate, up, down) in layer `i`."""
        part = self.family.attn if name in ("q", "k", "v", "o") else self.family.mlp
        return f"{self.layer(i)}.{part}.{name}_proj"

    def norm(self, i: int, which: str) -> str:
        """`input` or `post_attn` RMSNorm of layer `i`."""
        return f"{self.layer(i)}.{self.family.input_norm if which == 'input' else self.family.post_attn_norm}"

    def has_bias(self, name: str) -> bool:
        return self.qkv_bias if name in ("q", "k", "v") else self.o_bias if name == "o" else self.mlp_bias

    def header(self) -> dict:
        """Plain-data summary (for JSON output)."""
        return {
            "model_type": self.model_type,
            "num_layers": self.num_layers,
            "hidden_size": self.hidden_size,
            "head_dim": self.head_dim,
            "vocab_size": self.vocab_size,
            "tied_embeddings": self.tied,
            "biases": {"qkv": self.qkv_bias, "o": self.o_bias, "mlp": self.mlp_bias},
            "layers": [
                {"heads": s.heads, "kv_heads": s.kv_heads, "group_size": s.group_size, "mlp_channels": s.intermediate}
                for s in self.layers
            ],
        }


def _get(model: nn.Module, name: str, kind: type[nn.Module]) -> nn.Module:
    try:
        mod = model.get_submodule(name)
    except AttributeError as e:
        raise LlmpruneError(f"module {name} not found: the model does not follow its family's layout") from e
    if not isinstance(mod, kind):
        raise LlmpruneError(f"module {name} is a {type(mod).__name__}, expected {kind.__name__}")
    return mod


def describe(model: nn.Module) -> Layout:
    """Read the structure of a supported causal LM (any supported family; pruned widths allowed)."""
    config = getattr(model, "config", None)
    fam = family_for(getattr(config, "model_type", None))
    heads_cfg = config.num_attention_heads
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // heads_cfg
    embed = _get(model, fam.embed, nn.Embedding)
    head = _get(model, fam.lm_head, nn.Linear)
    hidden = embed.weight.shape[1]
    flags = {k: fam.flag(config, getattr(fam, k)) for k in ("qkv_bias", "o_bias", "mlp_bias")}
    shapes = []
    for i in range(len(_get(model, fam.layers, nn.ModuleList))):
        proj = {n: _get(model, f"{fam.layers}.{i}.{fam.attn}.{n}_proj", nn.Linear) for n in "qkvo"}
        proj |= {n: _get(model, f"{fam.layers}.{i}.{fam.mlp}.{n}_proj", nn.Linear) for n in ("gate", "up", "down")}
        q, k, v = (proj[n].out_features for n in "qkv")
        where = f"layer {i}"
        if not k or q % head_dim or k % head_dim or k != v or q % k:
            raise LlmpruneError(
                f"{where}: q/k/v widths {q}/{k}/{v} are not whole heads of head_dim {head_dim} with "
                "num_heads divisible by num_kv_heads; the model is not loadable as its family"
            )
        for n, mod in proj.items():
            expect = flags["qkv_bias" if n in "qkv" else "o_bias" if n == "o" else "mlp_bias"]
            if (mod.bias is not None) != expect:
                raise LlmpruneError(
                    f"{where}: {n}_proj {'has' if mod.bias is not None else 'lacks'} a bias, but a "
                    f"{fam.model_type} config with these flags says bias={expect}"
                )
        shapes.append(LayerShape(heads=q // head_dim, kv_heads=k // head_dim, intermediate=proj["gate"].out_features))
    return Layout(
        family=fam,
        hidden_size=hidden,
        head_dim=head_dim,
        vocab_size=embed.weight.shape[0],
        layers=tuple(shapes),
        tied=head.weight is embed.weight,
        **flags,
    )
