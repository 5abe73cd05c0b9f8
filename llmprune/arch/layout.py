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

import torch
from torch import nn

from llmprune.arch.family import ROLES, WRITERS, Family, family_of
from llmprune.arch.shapes import PROJ_WIDTHS, LayerShape, config_head_dim
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
    biases: frozenset[str]  # roles whose projection carries a bias (the same in every layer)

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
        """Name of the Linear holding projection `role` (q, k, v, o, gate, up, down) in layer `i`."""
        return f"{self.layer(i)}.{self.family.proj_path(role)}"

    def modules(self, i: int, roles: tuple[str, ...] = ROLES) -> tuple[str, ...]:
        """Names of the distinct Linears of layer `i` holding `roles`, in role order."""
        return tuple(f"{self.layer(i)}.{m}" for m in self.family.modules(roles))

    def rows(self, i: int, role: str) -> tuple[int, int]:
        """(first row, number of rows) of projection `role` in its Linear's output (fused ones share one)."""
        shape = self.layers[i]
        offset = 0
        for r in self.family.fused_roles(role):
            width = shape.proj_shape(r, self.hidden_size, self.head_dim)[0]
            if r == role:
                return offset, width
            offset += width
        raise AssertionError(role)

    def inner_norms(self, i: int) -> tuple[str, ...]:
        """Norm modules inside layer `i`'s attention (over head_dim, or over a projection's rows)."""
        return tuple(f"{self.layer(i)}.{n}" for n in self.family.inner_norms)

    def proj_norms(self, i: int) -> tuple[tuple[str, str], ...]:
        """(norm module, role) of the norms over a whole projection's output in layer `i`."""
        return tuple((f"{self.layer(i)}.{path}", role) for path, role in self.family.proj_norms)

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
        return role in self.biases

    def added_biases(self, config) -> tuple[str, ...]:
        """Writer roles carrying a bias the config does not state (the sequential engine's refit adds them)."""
        return tuple(r for r in WRITERS if r in self.biases and not self.family.bias(config, r))

    def header(self) -> dict:
        """Plain-data summary (for JSON output)."""
        return {
            "model_type": self.family.model_type,
            "num_layers": self.num_layers,
            "hidden_size": self.hidden_size,
            "head_dim": self.head_dim,
            "vocab_size": self.vocab_size,
            "tied_embeddings": self.tied,
            "biases": sorted(self.biases, key=ROLES.index),
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


def _layer_shape(model: nn.Module, fam: Family, i: int, head_dim: int) -> LayerShape:
    """Widths of layer `i` read from its Linears (a fused q/k/v splits by the attention's group size)."""
    prefix = f"{fam.layers}.{i}"
    lin = {path: get_module(model, f"{prefix}.{path}", nn.Linear) for path in fam.modules()}
    rows = lambda role: lin[fam.proj_path(role)].out_features  # noqa: E731
    if fam.qkv:
        group = int(getattr(get_module(model, f"{prefix}.{fam.attn}"), "num_key_value_groups", 0) or 0)
        total = rows("q")
        kv = total // head_dim // (group + 2) if group else 0
        q, k = group * kv * head_dim, kv * head_dim
        if not kv or (q + 2 * k) != total:
            raise LlmpruneError(
                f"layer {i}: {fam.qkv} has {total} rows, not q + k + v of whole heads of head_dim {head_dim} "
                f"with {group} query heads per KV head; the model is not loadable as a {fam} model"
            )
        v = k
    else:
        q, k, v = rows("q"), rows("k"), rows("v")
    if not k or q % head_dim or k % head_dim or k != v or q % k:
        raise LlmpruneError(
            f"layer {i}: q/k/v widths {q}/{k}/{v} are not whole heads of head_dim {head_dim} with "
            f"num_heads divisible by num_kv_heads; the model is not loadable as a {fam} model"
        )
    inter = rows("gate") // len(fam.fused_roles("gate"))
    return LayerShape(heads=q // head_dim, kv_heads=k // head_dim, intermediate=inter)


def _layer_biases(model: nn.Module, fam: Family, config, i: int) -> frozenset[str]:
    """The roles of layer `i` whose Linear carries a bias. Readers must match the config's bias rules;
    writers (o, down) may carry one the config does not state (refit biases of a pruned model)."""
    out = set()
    for role in ROLES:
        has = model.get_submodule(f"{fam.layers}.{i}.{fam.proj_path(role)}").bias is not None
        expect = fam.bias(config, role)
        if has != expect and not (has and role in WRITERS):
            raise LlmpruneError(
                f"layer {i}: {fam.proj_attr(role)} {'has' if has else 'lacks'} a bias, but a "
                f"{fam} config with these flags says bias={expect}"
            )
        if has:
            out.add(role)
    return frozenset(out)


def describe(model: nn.Module) -> Layout:
    """Read the structure of a supported causal LM (any registered family; pruned widths allowed)."""
    config = getattr(model, "config", None)
    fam = family_of(model)
    head_dim = config_head_dim(config)
    embed = get_module(model, fam.embed, nn.Embedding)
    head = get_module(model, fam.lm_head, nn.Linear)
    shapes, biases = [], set()
    for i in range(len(get_module(model, fam.layers, nn.ModuleList))):
        shapes.append(_layer_shape(model, fam, i, head_dim))
        biases.add(_layer_biases(model, fam, config, i))
    if len(biases) > 1:
        raise LlmpruneError(f"the layers carry biases on different projections ({sorted(map(sorted, biases))})")
    return Layout(
        family=fam,
        hidden_size=embed.weight.shape[1],
        head_dim=head_dim,
        vocab_size=embed.weight.shape[0],
        layers=tuple(shapes),
        tied=head.weight is embed.weight,
        biases=biases.pop() if biases else frozenset(),
    )


def module_widths(family: Family) -> dict[str, tuple[tuple[str, ...], str | None]]:
    """{path from a layer: (output widths summed, input width)} of every Linear of a layer, and of every
    norm over a projection's rows (input None), in the names of `PROJ_WIDTHS` ("q", "kv", "inter",
    "hidden"); a fused Linear sums its roles' widths. The generated modeling file carries this table."""
    out: dict[str, tuple[tuple[str, ...], str | None]] = {}
    for path in family.modules():
        roles = [r for r in ROLES if family.proj_path(r) == path]
        out[path] = (tuple(PROJ_WIDTHS[r][0] for r in roles), PROJ_WIDTHS[roles[0]][1])
    for path, role in family.proj_norms:
        out[path] = ((PROJ_WIDTHS[role][0],), None)
    return out


def module_shapes(family: Family, shape: LayerShape, hidden: int, head_dim: int) -> dict[str, tuple[int, ...]]:
    """{path from a layer: shape} of every Linear weight (out, in) and projection-norm weight (rows,) of a
    layer of `shape` (`module_widths` evaluated): what loaders build before reading the weights."""
    widths = shape.widths(hidden, head_dim)
    return {
        path: (sum(widths[w] for w in outs),) + ((widths[n_in],) if n_in else ())
        for path, (outs, n_in) in module_widths(family).items()
    }


def layer_norm_eps(model: nn.Module, layout: Layout, i: int) -> dict[str, float]:
    """{path from the layer: eps} of every norm of layer `i` (over the hidden size, and inside attention)."""
    fam = layout.family
    paths = fam.layer_norms + fam.inner_norms
    return {p: float(getattr(model.get_submodule(f"{layout.layer(i)}.{p}"), fam.norm_eps)) for p in paths}


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


def set_embed_scale_(embed: nn.Module, family: Family, hidden: int) -> None:
    """Set the sqrt(hidden size) factor of a scaled embedding (Gemma) to that of a `hidden`-wide model."""
    value = hidden**0.5
    for attr in family.embed_scale_attrs:
        current = getattr(embed, attr)
        if isinstance(current, torch.Tensor):  # a buffer (also one still on the meta device after loading)
            setattr(embed, attr, torch.tensor(value, dtype=current.dtype, device=embed.weight.device))
        else:
            setattr(embed, attr, value)
