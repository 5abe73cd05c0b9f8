"""Where things live in the supported decoder families, and the widths read back from tensors.

llama, mistral and qwen2 share one layout in transformers 5:
`model.model.{embed_tokens, layers[i].{self_attn.{q,k,v,o}_proj, mlp.{gate,up,down}_proj,
input_layernorm, post_attention_layernorm}, norm}` and `model.lm_head`. Widths are always read from
the tensors, never from the config, so a model pruned non-uniformly reports its true shapes.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from torch import nn

from llmprune.errors import LlmpruneError

SUPPORTED_FAMILIES: tuple[str, ...] = ("llama", "mistral", "qwen2")


@dataclass(frozen=True)
class LayerWidths:
    """Widths of one decoder layer."""

    num_attention_heads: int
    num_key_value_heads: int
    intermediate_size: int

    def to_dict(self) -> dict:
        return asdict(self)


def check_supported(model: nn.Module) -> None:
    model_type = getattr(getattr(model, "config", None), "model_type", None)
    if model_type not in SUPPORTED_FAMILIES:
        raise LlmpruneError(
            f"structured pruning supports {', '.join(SUPPORTED_FAMILIES)} models, got model_type={model_type!r}; "
            "load a LLaMA, Mistral or Qwen2 causal LM"
        )
    if not hasattr(model, "model") or not hasattr(model.model, "layers") or not hasattr(model, "lm_head"):
        raise LlmpruneError(
            f"{type(model).__name__} is not a *ForCausalLM model with .model.layers and .lm_head; "
            "load it with AutoModelForCausalLM"
        )


def decoder(model: nn.Module) -> nn.Module:
    """The inner decoder (`model.model`) holding embed_tokens, layers and norm."""
    return model.model


def layers(model: nn.Module) -> nn.ModuleList:
    return model.model.layers


def head_dim(model: nn.Module) -> int:
    return int(layers(model)[0].self_attn.head_dim)


def hidden_size(model: nn.Module) -> int:
    return int(model.model.embed_tokens.weight.shape[1])


def layer_widths(layer: nn.Module) -> LayerWidths:
    attn, mlp = layer.self_attn, layer.mlp
    hd = attn.head_dim
    return LayerWidths(
        num_attention_heads=attn.q_proj.out_features // hd,
        num_key_value_heads=attn.k_proj.out_features // hd,
        intermediate_size=mlp.up_proj.out_features,
    )


def all_widths(model: nn.Module) -> list[LayerWidths]:
    return [layer_widths(layer) for layer in layers(model)]


def norms(model: nn.Module) -> list[nn.Module]:
    """Every RMSNorm over the hidden size: two per layer, then the final norm."""
    out = []
    for layer in layers(model):
        out += [layer.input_layernorm, layer.post_attention_layernorm]
    out.append(model.model.norm)
    return out


def embeddings_tied(model: nn.Module) -> bool:
    return model.lm_head.weight is model.model.embed_tokens.weight
