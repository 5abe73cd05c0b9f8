"""`llmprune groups MODEL`: the coupled structures (groups) of a model, as a table and as JSON."""

from __future__ import annotations

import time
from typing import Annotated

import typer
from rich.console import Console

from llmprune.arch import ROLES
from llmprune.cli.common import JsonOut, ModelArg, console, option, split_list, table, write_json
from llmprune.prune.config import PruneConfig


def command(
    model: ModelArg,
    layers: str | None = option(PruneConfig, "layers"),
    kind: Annotated[
        str | None,
        typer.Option(
            help="Comma-separated group kinds: attn_head, kv_group, mlp_channel, layer, hidden (default: all)."
        ),
    ] = None,
    json_out: JsonOut = None,
    verify: Annotated[
        bool, typer.Option(help="Cross-check the groups against torch-pruning's traced dependency graph.")
    ] = True,
) -> None:
    """List the groups of parameters that must be pruned together (no calibration data needed)."""
    from llmprune.arch import describe
    from llmprune.graph import build_groups, parse_layer_range
    from llmprune.graph.build import check_kinds
    from llmprune.models.skeleton import load_skeleton

    t0 = time.perf_counter()
    kinds = check_kinds(split_list(kind) or None)  # bad options fail before the model is read
    m = load_skeleton(model)
    lay = describe(m)
    ids = parse_layer_range(layers, lay.num_layers) if layers else range(lay.num_layers)
    groups = build_groups(m, layers=ids, kinds=kinds, layout=lay)
    checked = None
    if verify:
        from llmprune.graph.verify import verify_groups

        checked = verify_groups(m, groups, layout=lay)
    _print(model, lay, groups, ids)
    if checked:
        console.print(
            f"verified against torch-pruning's trace: {checked.groups} groups, {checked.queries} queries, "
            f"{checked.seconds:.2f} s"
        )
    units = sum(g.units for g in groups)
    console.print(
        f"{len(groups)} groups (one per kind and layer, plus hidden) holding {units:,} prunable units "
        f"(heads, channels, layers) in {time.perf_counter() - t0:.2f} s"
    )
    header = {"model": model, **lay.header(), "selected_layers": [ids[0], ids[-1]], "kinds": sorted(kinds)}
    header["verified"] = checked.__dict__ if checked else False
    write_json(json_out, {**header, "groups": [g.to_dict() for g in groups]})


def _print(spec: str, lay, groups, ids: range) -> None:
    """One row per run of consecutive layers with the same shapes and groups (SmolLM2: a single row)."""
    by_layer: dict[int, list] = {}
    for g in groups:
        if g.layer is not None:
            by_layer.setdefault(g.layer, []).append(g)
    runs: list[list] = []  # [first, last, row key]
    for i in ids:
        s = lay.layers[i]
        members = ", ".join(f"{g.kind} {len(g.members)}" for g in by_layer.get(i, [])) or "-"
        key = (s.heads, s.kv_heads, s.group_size, s.intermediate, members)
        if runs and runs[-1][2] == key and runs[-1][1] == i - 1:
            runs[-1][1] = i
        else:
            runs.append([i, i, key])
    rows = [[f"{a}" if a == b else f"{a}-{b}", *key] for a, b, key in runs]
    biases = ", ".join(sorted(lay.biases, key=ROLES.index)) if lay.biases else "none"
    table(
        f"{spec} ({lay.family}, {lay.num_layers} layers)",
        ["layers", "heads", "KV heads", "heads per KV", "MLP channels", "members per group"],
        rows,
    )
    out = Console()
    out.print(
        f"hidden {lay.hidden_size}, head_dim {lay.head_dim}, vocab {lay.vocab_size}, "
        f"{'tied' if lay.tied else 'untied'} embeddings, biases: {biases}"
    )
    for g in groups:
        if g.kind == "hidden":
            out.print(
                f"hidden group: {g.units} channels, {len(g.members)} members across all {lay.num_layers} layers "
                f"(embedding{'' if lay.tied else ', lm_head'}, {len(lay.hidden_norms())} norms, every projection)"
            )
