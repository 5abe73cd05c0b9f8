"""`Family`: where every part of one decoder-only architecture lives, and the registry of families.

Every step that touches a model's structure reads a Family and nothing else: the graph (groups and
their costs), surgery, reconstruction, sparsify targets, LoRA targets, the generated modeling file and
the loaders. A new family is one `register_family(Family(...))` entry in `llmprune/arch/families.py`.

The families llmprune prunes are pre-norm (or sandwich-norm) decoders with rotary attention and a gated
MLP. Their projections are named by *role*:

- attention: `q`, `k`, `v` read the residual stream, `o` writes it;
- MLP: `gate`, `up` read the residual stream, `down` writes it.

Module paths are dotted names from the `*ForCausalLM` root (`model.layers`), or from one decoder layer
(`self_attn`, `input_layernorm`). A bias rule is a bool or the name of a boolean config attribute
(Llama's `attention_bias`). This module does not import torch: recipes and configs can name families
without loading it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from llmprune.errors import LlmpruneError

ATTN_ROLES: tuple[str, ...] = ("q", "k", "v", "o")
MLP_ROLES: tuple[str, ...] = ("gate", "up", "down")
ROLES: tuple[str, ...] = ATTN_ROLES + MLP_ROLES
READERS: tuple[str, ...] = ("q", "k", "v", "gate", "up")  # read the residual stream (input columns)
WRITERS: tuple[str, ...] = ("o", "down")  # write the residual stream (output rows)

BiasRule = bool | str


@dataclass(frozen=True)
class Family:
    """One architecture, keyed by its Hugging Face `config.model_type`."""

    model_type: str
    causal_lm: str  # the transformers class, e.g. "LlamaForCausalLM"
    qkv_bias: BiasRule = False  # q/k/v projections carry biases
    o_bias: BiasRule = False  # o_proj carries a bias
    mlp_bias: BiasRule = False  # gate/up/down projections carry biases
    layers: str = "model.layers"
    embed: str = "model.embed_tokens"
    final_norm: str = "model.norm"
    lm_head: str = "lm_head"
    rotary_emb: str = "model.rotary_emb"  # rebuilt from the config after loading on the meta device
    attn: str = "self_attn"
    mlp: str = "mlp"
    # norms over the hidden size, by where they sit in a layer (execution order: pre_attn, attention,
    # post_attn, pre_mlp, MLP, post_mlp); RMSNorm modules holding `weight` and `norm_eps`
    pre_attn_norms: tuple[str, ...] = ("input_layernorm",)
    post_attn_norms: tuple[str, ...] = ()
    pre_mlp_norms: tuple[str, ...] = ("post_attention_layernorm",)
    post_mlp_norms: tuple[str, ...] = ()
    norm_eps: str = "variance_epsilon"  # the norm modules' eps attribute
    config_norm_eps: str = "rms_norm_eps"  # the config field it comes from
    rotary_fn: str = "apply_rotary_pos_emb"  # module-level function of the modeling file (graph/trace.py)
    modeling: str | None = None  # module holding `causal_lm`; default transformers.models.<type>.modeling_<type>

    def __str__(self) -> str:
        return self.model_type

    def proj_attr(self, role: str) -> str:
        """Attribute name of projection `role` inside its attention or MLP module (`q_proj`)."""
        if role not in ROLES:
            raise ValueError(f"unknown projection role {role!r}; roles are {', '.join(ROLES)}")
        return f"{role}_proj"

    def proj_path(self, role: str) -> str:
        """Path of projection `role` from a decoder layer (`self_attn.q_proj`)."""
        return f"{self.attn if role in ATTN_ROLES else self.mlp}.{self.proj_attr(role)}"

    @property
    def layer_norms(self) -> tuple[str, ...]:
        """Every norm of a layer over the hidden size, in execution order."""
        return self.pre_attn_norms + self.post_attn_norms + self.pre_mlp_norms + self.post_mlp_norms

    @property
    def lora_targets(self) -> tuple[str, ...]:
        """Default LoRA targets: every attention and MLP projection (peft matches the attribute names)."""
        return tuple(self.proj_attr(r) for r in ROLES)

    @property
    def modeling_module(self) -> str:
        return self.modeling or f"transformers.models.{self.model_type}.modeling_{self.model_type}"

    def bias(self, config: Any, role: str) -> bool:
        """Does projection `role` carry a bias in a model with this config?"""
        rule = self.qkv_bias if role in ("q", "k", "v") else self.o_bias if role == "o" else self.mlp_bias
        return bool(getattr(config, rule, False)) if isinstance(rule, str) else rule

    def config_class(self) -> type:
        """The transformers config class of this family."""
        from transformers import AutoConfig

        return type(AutoConfig.for_model(self.model_type))


FAMILIES: dict[str, Family] = {}


def register_family(family: Family) -> Family:
    """Add `family` to the registry (its model_type must be new); returns it."""
    if not family.model_type or family.model_type != family.model_type.strip():
        raise ValueError(f"invalid model_type {family.model_type!r}")
    if family.model_type in FAMILIES:
        raise ValueError(f"family {family.model_type!r} is already registered")
    FAMILIES[family.model_type] = family
    return family


def family_for(model_type: str | None) -> Family:
    """The registered family of `model_type`, or an error listing the supported ones."""
    if model_type not in FAMILIES:
        raise LlmpruneError(
            f"unsupported architecture {model_type!r}: llmprune supports the families "
            f"{', '.join(sorted(FAMILIES))} (config.model_type); convert the model or add a Family"
        )
    return FAMILIES[model_type]


def family_of(obj: Any) -> Family:
    """The family of a model or config (reads `config.model_type`)."""
    config = getattr(obj, "config", obj)
    return family_for(getattr(config, "model_type", None))
