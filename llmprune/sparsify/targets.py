"""Which weights are sparsified: the attention and MLP projections of every decoder layer.

Embeddings, norms and lm_head are never touched. The projections and their names come from the model's
family (`llmprune.arch`): names are the model's own module names (`model.layers.3.mlp.down_proj`), so
reports and errors point at the exact layer.
"""

from __future__ import annotations

from torch import nn

from llmprune.arch import Family, describe
from llmprune.errors import LlmpruneError


def layer_linears(layer: nn.Module, family: Family) -> dict[str, nn.Linear]:
    """{path in the layer (`mlp.up_proj`): Linear} of one decoder layer, in role order (q, k, v, o, gate, up,
    down; a fused Linear such as Phi-3's `qkv_proj` once)."""
    return {path: layer.get_submodule(path) for path in family.modules()}


def layer_targets(model: nn.Module) -> list[tuple[str, dict[str, nn.Linear]]]:
    """[(layer name, `layer_linears` of that layer)] for every decoder layer, in order."""
    lay = describe(model)  # an unsupported architecture fails here, naming the supported families
    return [(lay.layer(i), layer_linears(model.get_submodule(lay.layer(i)), lay.family)) for i in range(lay.num_layers)]


def target_linears(model: nn.Module) -> dict[str, nn.Linear]:
    """{full module name: Linear} of every selected projection, in model order."""
    return {f"{prefix}.{short}": lin for prefix, linears in layer_targets(model) for short, lin in linears.items()}


def check_pattern_fits(linears: dict[str, nn.Linear], m: int) -> None:
    """Every layer's input width must be a multiple of M; the error names the first layer that is not."""
    for name, lin in linears.items():
        if lin.in_features % m:
            raise LlmpruneError(
                f"--pattern N:{m} does not fit {name}: its {lin.in_features} inputs are not a multiple of {m}; "
                f"choose an M that divides {lin.in_features} (e.g. 2:4 or 4:8 for widths divisible by 8)"
            )
