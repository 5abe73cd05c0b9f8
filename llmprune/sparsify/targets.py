"""Which weights are sparsified: the q/k/v/o and gate/up/down Linear layers of every decoder layer.

Embeddings, norms and lm_head are never touched. Names are the model's own module names
(`model.layers.3.mlp.down_proj`), so reports and errors point at the exact layer.
"""

from __future__ import annotations

from torch import nn

from llmprune.errors import LlmpruneError

TARGET_NAMES: tuple[str, ...] = (
    "self_attn.q_proj",
    "self_attn.k_proj",
    "self_attn.v_proj",
    "self_attn.o_proj",
    "mlp.gate_proj",
    "mlp.up_proj",
    "mlp.down_proj",
)


def decoder_layers(model: nn.Module) -> nn.ModuleList:
    """`model.model.layers` of a *ForCausalLM, with a clear error for anything else."""
    inner = getattr(model, "model", None)
    layers = getattr(inner, "layers", None)
    if not isinstance(layers, nn.ModuleList) or len(layers) == 0:
        raise LlmpruneError(
            f"{type(model).__name__} has no decoder layers at .model.layers; load a LLaMA/Mistral/Qwen2-style "
            "causal LM with AutoModelForCausalLM"
        )
    return layers


def layer_linears(layer: nn.Module) -> dict[str, nn.Linear]:
    """{short name (`mlp.up_proj`): Linear} of one decoder layer, in TARGET_NAMES order."""
    out = {}
    for name in TARGET_NAMES:
        try:
            mod = layer.get_submodule(name)
        except AttributeError:
            continue
        if isinstance(mod, nn.Linear):
            out[name] = mod
    if not out:
        raise LlmpruneError(
            f"decoder layer {type(layer).__name__} has none of {', '.join(TARGET_NAMES)} as nn.Linear; "
            "only LLaMA/Mistral/Qwen2-style layers are supported"
        )
    return out


def target_linears(model: nn.Module) -> dict[str, nn.Linear]:
    """{full module name: Linear} of every selected layer, in model order."""
    return {
        f"model.layers.{i}.{short}": lin
        for i, layer in enumerate(decoder_layers(model))
        for short, lin in layer_linears(layer).items()
    }


def check_pattern_fits(linears: dict[str, nn.Linear], m: int) -> None:
    """Every layer's input width must be a multiple of M; the error names the first layer that is not."""
    for name, lin in linears.items():
        if lin.in_features % m:
            raise LlmpruneError(
                f"--pattern N:{m} does not fit {name}: its {lin.in_features} inputs are not a multiple of {m}; "
                f"choose an M that divides {lin.in_features} (e.g. 2:4 or 4:8 for widths divisible by 8)"
            )
