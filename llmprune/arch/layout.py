"""One model's structure: its family plus the shapes *read from the modules* (not from the config).

`describe(model)` returns a `Layout`, so a model whose layers were pruned to different widths is
described correctly. Every layer must satisfy the attention invariants: q rows = heads * head_dim,
k/v rows = kv_heads * head_dim, heads divisible by kv_heads; and every projection's bias must be what
the family's bias rules say for this config.

The shapes of each layer are `llmprune.arch.shapes.LayerShape`, the one shape type that plans,
manifests, surgery, loaders and the graph share.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from llmprune.arch.family import ROLES, Family, family_of
from llmprune.arch.shapes import LayerShape, config_head_dim
from llmprune.errors import LlmpruneError

NORM_POSITIONS = ("pre_attn", "post_attn", "pre_mlp", "post_mlp")


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
    def num_layers(self) -> int:
        return len(self.layers)

    @property
    def uniform(self) -> LayerShape | None:
        """The shape shared by every layer, or None when the layers differ."""
        return self.layers[0] if len(set(self.layers)) == 1 else None

    def layer(self, i: int) -> str:
        return f"{self.family.layers}.{i}"

    def attn(self, i: int) -> str:
        return f"{self.layer(i)}.{self.family.attn}"

    def mlp(self, i: int) -> str:
        return f"{self.layer(i)}.{self.family.mlp}"

    def proj(self, i: int, role: str) -> str:
        """Module name of projection `role` (q, k, v, o, gate, up, down) in layer `i`."""
        return f"{self.layer(i)}.{self.family.proj_path(role)}"

    def norms(self, i: int, where: str | None = None) -> tuple[str, ...]:
        """Norm modules of layer `i` over the hidden size (all, in execution order, or one position)."""
        if where is not None and where not in NORM_POSITIONS:
            raise ValueError(f"unknown norm position {where!r}; one of {', '.join(NORM_POSITIONS)}")
        names = self.family.layer_norms if where is None else getattr(self.family, f"{where}_norms")
        return tuple(f"{self.layer(i)}.{n}" for n in names)

    def hidden_norms(self) -> tuple[str, ...]:
        """Every norm over the hidden size: the layers' in order, then the final norm."""
        return tuple(n for i in range(self.num_layers) for n in self.norms(i)) + (self.family.final_norm,)

    def has_bias(self, role: str) -> bool:
        return self.qkv_bias if role in ("q", "k", "v") else self.o_bias if role == "o" else self.mlp_bias

    def header(self) -> dict:
        """Plain-data summary (for JSON output)."""
        return {
            "model_type": self.family.model_type,
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


def get_module(model: nn.Module, name: str, kind: type[nn.Module] = nn.Module) -> nn.Module:
    """`model.get_submodule(name)` with a clear error when it is missing or of another type."""
    try:
        mod = model.get_submodule(name)
    except AttributeError as e:
        raise LlmpruneError(f"module {name} not found: the model does not follow its family's layout") from e
    if not isinstance(mod, kind):
        raise LlmpruneError(f"module {name} is a {type(mod).__name__}, expected {kind.__name__}")
    return mod


def decoder_layers(model: nn.Module) -> nn.ModuleList:
    """The decoder layers of a model of a supported family."""
    return get_module(model, family_of(model).layers, nn.ModuleList)


def describe(model: nn.Module) -> Layout:
    """Read the structure of a supported causal LM (any registered family; pruned widths allowed)."""
    config = getattr(model, "config", None)
    fam = family_of(model)
    head_dim = config_head_dim(config)
    embed = get_module(model, fam.embed, nn.Embedding)
    head = get_module(model, fam.lm_head, nn.Linear)
    flags = {"qkv_bias": fam.bias(config, "q"), "o_bias": fam.bias(config, "o"), "mlp_bias": fam.bias(config, "down")}
    shapes = []
    for i in range(len(get_module(model, fam.layers, nn.ModuleList))):
        proj = {r: get_module(model, f"{fam.layers}.{i}.{fam.proj_path(r)}", nn.Linear) for r in ROLES}
        q, k, v = (proj[n].out_features for n in "qkv")
        if not k or q % head_dim or k % head_dim or k != v or q % k:
            raise LlmpruneError(
                f"layer {i}: q/k/v widths {q}/{k}/{v} are not whole heads of head_dim {head_dim} with "
                f"num_heads divisible by num_kv_heads; the model is not loadable as a {fam} model"
            )
        for r, mod in proj.items():
            expect = fam.bias(config, r)
            if (mod.bias is not None) != expect:
                raise LlmpruneError(
                    f"layer {i}: {fam.proj_attr(r)} {'has' if mod.bias is not None else 'lacks'} a bias, but a "
                    f"{fam} config with these flags says bias={expect}"
                )
        shapes.append(LayerShape(heads=q // head_dim, kv_heads=k // head_dim, intermediate=proj["gate"].out_features))
    return Layout(
        family=fam,
        hidden_size=embed.weight.shape[1],
        head_dim=head_dim,
        vocab_size=embed.weight.shape[0],
        layers=tuple(shapes),
        tied=head.weight is embed.weight,
        **flags,
    )


def set_layer_shape_(layer: nn.Module, family: Family, shape: LayerShape, *, hidden: int | None = None) -> None:
    """Update the attributes a decoder layer's modules read at run time after its widths changed.

    transformers 5 attention modules read `num_key_value_groups` (`repeat_kv`); older releases also kept
    `num_heads` / `num_key_value_heads`; MLP modules may keep `intermediate_size`, layers and MLPs
    `hidden_size` (set when `hidden` is given). `head_dim`, `scaling` and `layer_idx` do not depend on
    the widths.
    """
    attn = layer.get_submodule(family.attn)
    attn.num_key_value_groups = shape.group_size
    if hasattr(attn, "num_heads"):
        attn.num_heads = shape.heads
    if hasattr(attn, "num_key_value_heads"):
        attn.num_key_value_heads = shape.kv_heads
    mlp = layer.get_submodule(family.mlp)
    if hasattr(mlp, "intermediate_size"):
        mlp.intermediate_size = shape.intermediate
    if hidden is not None:
        for obj in (layer, mlp):
            if hasattr(obj, "hidden_size"):
                obj.hidden_size = hidden
