"""LLM-aware groups of coupled parameters of a causal LM of any registered family (`llmprune.arch`).

`build_groups(model)` returns, per decoder layer (in layer order):

- `attn_head`   units = query heads. q_proj rows (and q bias) of the head, o_proj columns.
- `kv_group`    units = KV heads. k_proj and v_proj rows (and biases) of the KV head, plus the rows of
                q_proj and columns of o_proj of the query heads it serves (unit size group_size*head_dim).
- `mlp_channel` units = intermediate channels. gate/up rows (and biases), down_proj columns.
- `layer`       one unit: every parameter of the decoder layer (dim = WHOLE).

and one model-wide `hidden` group (units = hidden size): the embedding columns, the input columns of
every reader (q/k/v/gate/up), the output rows of every writer (o/down, and their biases), every norm
weight over the hidden size, and lm_head columns unless lm_head is tied to the embedding (a tied
Parameter is listed once, under the embedding). Members are listed in execution order.

Module names, biases and norms come from the family's description (`llmprune.arch`); the groups are
what surgery removes (`llmprune.surgery`) and what importance scores (`llmprune.importance`).

Attention is pruned per head, never per channel inside a head: rotary embeddings rotate channel i with
channel i + head_dim/2 of the same head, and head_dim must stay uniform. The rotary `inv_freq` buffer
depends only on head_dim, so no group touches it.

GQA and the pruning side. Query head h reads KV head h // group_size (transformers' `repeat_kv`). A plan
keeps, per layer, some KV heads, each with the same number of query heads. Removing a KV head (a
`kv_group` unit) removes its query heads; removing query heads (`attn_head` units) must leave every kept
KV group with the same, non-zero number of query heads, so num_attention_heads stays divisible by
num_key_value_heads in every layer and the model reloads with transformers' attention
(`PrunePlan.validate` enforces this). With multi-head attention (group size 1) a query head cannot go
without its KV head: prune `kv_group` units.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from torch import nn

from llmprune.arch import WRITERS, Layout, describe
from llmprune.errors import LlmpruneError
from llmprune.graph.nodes import GROUP_KINDS, WHOLE, Group, Member

PER_LAYER_KINDS = ("attn_head", "kv_group", "mlp_channel", "layer")


def parse_layer_range(spec: str, num_layers: int) -> range:
    """Parse an inclusive layer range "A-B" (or a single layer "A") and check it against num_layers.

    B is inclusive: "4-29" is layers 4..29, which is LLM-Pruner's `--block_attention_layer_start 4
    --block_attention_layer_end 30` (its end is exclusive) on LLaMA-7B.
    """
    text = str(spec).strip()
    parts = text.split("-")
    try:
        if len(parts) == 1:
            start = end = int(parts[0])
        elif len(parts) == 2:
            start, end = int(parts[0]), int(parts[1])
        else:
            raise ValueError
    except ValueError:
        raise LlmpruneError(f"bad layer range {spec!r}: write A-B (inclusive, 0-based), e.g. 4-29") from None
    if start > end:
        raise LlmpruneError(f"bad layer range {spec!r}: start {start} is after end {end}")
    return check_layers(range(start, end + 1), num_layers, spec=text)


def check_layers(layers: Iterable[int], num_layers: int, *, spec: str | None = None) -> range:
    """Return `layers` as a range if it is non-empty, contiguous and within 0..num_layers-1."""
    ids = list(layers)
    what = f"layer range {spec or _fmt(ids)}"
    if not ids:
        raise LlmpruneError(f"{what} is empty; the model has layers 0-{num_layers - 1}")
    if ids != list(range(ids[0], ids[-1] + 1)):
        raise LlmpruneError(f"{what} is not contiguous; pass A-B")
    if ids[0] < 0 or ids[-1] >= num_layers:
        raise LlmpruneError(f"{what} is out of bounds: the model has {num_layers} layers (0-{num_layers - 1})")
    return range(ids[0], ids[-1] + 1)


def _fmt(ids: list[int]) -> str:
    return f"{ids[0]}-{ids[-1]}" if ids else "(empty)"


def check_kinds(kinds: Iterable[str] | None) -> set[str]:
    if kinds is None:
        return set(GROUP_KINDS)
    chosen = set(kinds)
    bad = sorted(chosen - set(GROUP_KINDS))
    if bad or not chosen:
        raise LlmpruneError(f"unknown group kind(s) {bad or '(none)'}; choose from {', '.join(GROUP_KINDS)}")
    return chosen


def _linear(lay: Layout, i: int, role: str, dim: int, unit_size: int = 1) -> list[Member]:
    """The weight (sliced along dim) and, for output rows, the bias of projection `role` in layer i; rows of
    a fused Linear start at the role's offset."""
    mod = lay.proj(i, role)
    offset = lay.rows(i, role)[0] if dim == 0 else 0
    out = [Member(mod, "weight", dim, unit_size, offset)]
    if dim == 0 and lay.has_bias(role):
        out.append(Member(mod, "bias", 0, unit_size, offset))
    return out


def _proj_norm(lay: Layout, i: int, role: str, unit_size: int) -> list[Member]:
    """The entries of a norm over projection `role`'s rows (OLMo 2's q_norm / k_norm) that follow its rows."""
    return [Member(norm, "weight", 0, unit_size) for norm, r in lay.proj_norms(i) if r == role]


def attn_head_group(lay: Layout, i: int) -> Group:
    hd = lay.head_dim
    members = [*_linear(lay, i, "q", 0, hd), *_proj_norm(lay, i, "q", hd), *_linear(lay, i, "o", 1, hd)]
    return Group("attn_head", i, lay.layers[i].heads, tuple(members))


def kv_group_group(lay: Layout, i: int) -> Group:
    """Unit k: KV head k's k/v rows and its query heads (`LayerShape.query_heads(k)`: consecutive)."""
    hd, shape = lay.head_dim, lay.layers[i]
    qs = shape.group_size * hd
    members = [*_linear(lay, i, "q", 0, qs), *_linear(lay, i, "k", 0, hd), *_linear(lay, i, "v", 0, hd)]
    members += [*_proj_norm(lay, i, "q", qs), *_proj_norm(lay, i, "k", hd), *_linear(lay, i, "o", 1, qs)]
    return Group("kv_group", i, shape.kv_heads, tuple(members))


def mlp_channel_group(lay: Layout, i: int) -> Group:
    members = [*_linear(lay, i, "gate", 0), *_linear(lay, i, "up", 0), *_linear(lay, i, "down", 1)]
    return Group("mlp_channel", i, lay.layers[i].intermediate, tuple(members))


def _sequence(lay: Layout, i: int) -> list[tuple[str, str, str]]:
    """Layer i in execution order: ("norm", module, "") over the hidden size, ("inner", module, "") inside
    attention, and ("read" | "write", Linear, role) for each distinct Linear."""
    linears = lambda roles: [("write" if r in WRITERS else "read", lay.proj(i, r), r) for r in roles]  # noqa: E731
    seq = [("norm", n, "") for n in lay.norms(i, "pre_attn")]
    seq += _distinct(linears(("q", "k", "v"))) + [("inner", n, "") for n in lay.inner_norms(i)] + linears(("o",))
    seq += [("norm", n, "") for n in lay.norms(i, "post_attn") + lay.norms(i, "pre_mlp")]
    seq += _distinct(linears(("gate", "up"))) + linears(("down",))
    return seq + [("norm", n, "") for n in lay.norms(i, "post_mlp")]


def _distinct(items: list[tuple[str, str, str]]) -> list[tuple[str, str, str]]:
    """The first entry of each Linear (a fused one appears once)."""
    seen: set[str] = set()
    return [it for it in items if not (it[1] in seen or seen.add(it[1]))]


def layer_group(lay: Layout, i: int) -> Group:
    members = []
    for what, name, role in _sequence(lay, i):
        params = _params(lay, role) if what in ("read", "write") else ("weight",)
        members += [Member(name, p, WHOLE) for p in params]
    return Group("layer", i, 1, tuple(members))


def _params(lay: Layout, role: str) -> tuple[str, ...]:
    return ("weight", "bias") if lay.has_bias(role) else ("weight",)


def hidden_group(lay: Layout) -> Group:
    fam = lay.family
    members = [Member(fam.embed, "weight", 1)]
    for i in range(lay.num_layers):
        for what, name, role in _sequence(lay, i):
            if what == "norm":
                members.append(Member(name, "weight", 0))
            elif what == "write":
                members += [Member(name, p, 0) for p in _params(lay, role)]
            elif what == "read":
                members.append(Member(name, "weight", 1))
    members.append(Member(fam.final_norm, "weight", 0))
    if not lay.tied:
        members.append(Member(fam.lm_head, "weight", 1))
    return Group("hidden", None, lay.hidden_size, tuple(members))


LAYER_BUILDERS: dict[str, Callable[[Layout, int], Group]] = {
    "attn_head": attn_head_group,
    "kv_group": kv_group_group,
    "mlp_channel": mlp_channel_group,
    "layer": layer_group,
}


def build_groups(
    model: nn.Module,
    *,
    layers: range | str | None = None,
    kinds: Iterable[str] | None = None,
    layout: Layout | None = None,
) -> list[Group]:
    """Groups of `model` (see module doc): per layer attn_head, kv_group, mlp_channel, layer, then hidden.

    `layers` (a range, or an inclusive "A-B" string) restricts the per-layer groups; the hidden group
    always spans the whole model. `kinds` selects group kinds. Example::

        groups = build_groups(model, layers=parse_layer_range("4-29", 32), kinds={"attn_head", "mlp_channel"})
    """
    lay = layout or describe(model)
    chosen = check_kinds(kinds)
    if layers is None:
        ids = range(lay.num_layers)
    elif isinstance(layers, str):
        ids = parse_layer_range(layers, lay.num_layers)
    else:
        ids = check_layers(layers, lay.num_layers)
    groups = [LAYER_BUILDERS[k](lay, i) for i in ids for k in PER_LAYER_KINDS if k in chosen]
    if "hidden" in chosen:
        groups.append(hidden_group(lay))
    return groups
