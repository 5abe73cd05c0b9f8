"""`Family`: where every part of one decoder-only architecture lives, and the registry of families.

Every step that touches a model's structure reads a Family and nothing else: the graph (groups and
their costs), surgery, reconstruction, sparsify targets, LoRA targets, the generated modeling file and
the loaders. A new family is one `register_family(Family(...))` entry in `llmprune/arch/families.py`.

The families llmprune prunes are decoders with rotary attention and a gated MLP, their norms before,
after or around (Gemma's "sandwich") each block. Their projections are named by *role*:

- attention: `q`, `k`, `v` read the residual stream, `o` writes it;
- MLP: `gate`, `up` read the residual stream, `down` writes it.

A role lives in its own `nn.Linear` (`q_proj`) or in a fused one: `qkv` (Phi-3's `qkv_proj`, rows q, then
k, then v) or `gate_up` (`gate_up_proj`, rows gate, then up); the graph slices fused modules by row
offset. Norms over the hidden size sit at four places in a layer; norms inside attention span one head
(`head_norms`: Qwen3, Gemma 3) or a whole projection (`proj_norms`: OLMo 2's q_norm over every query row).

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
    # inside attention: norms over head_dim applied to every head (paths from the layer), and norms over a
    # whole projection's output rows, as (path, role)
    head_norms: tuple[str, ...] = ()
    proj_norms: tuple[tuple[str, str], ...] = ()
    norm_eps: str = "variance_epsilon"  # the norm modules' eps attribute
    norm_offset: float = 0.0  # norms scale by (offset + weight): Gemma's (1 + w)
    config_norm_eps: str = "rms_norm_eps"  # the config field it comes from
    qkv: str | None = None  # fused q/k/v projection, an attribute of the attention module
    gate_up: str | None = None  # fused gate/up projection, an attribute of the MLP module
    scaled_embedding: bool = False  # embeddings multiplied by sqrt(hidden_size) (Gemma), kept in these attributes
    embed_scale_attrs: tuple[str, ...] = ("scalar_embed_scale", "embed_scale")
    config_heads: bool = False  # attention splits q/k/v by the *config's* head counts: every layer keeps the same
    rotary_fn: str = "apply_rotary_pos_emb"  # module-level function of the modeling file (graph/trace.py)
    modeling: str | None = None  # module holding `causal_lm`; default transformers.models.<type>.modeling_<type>
    # llama.cpp (GGUF export, `llmprune.ggufio`): the architecture of uniform widths and of per-layer widths
    # (None: not exported)
    gguf_arch: str | None = None
    gguf_nonuniform_arch: str | None = None

    def __str__(self) -> str:
        return self.model_type

    def proj_attr(self, role: str) -> str:
        """Attribute name of the Linear holding projection `role` in its attention or MLP module (`q_proj`;
        `qkv_proj` for q, k and v of a fused family)."""
        if role not in ROLES:
            raise ValueError(f"unknown projection role {role!r}; roles are {', '.join(ROLES)}")
        if self.qkv and role in ("q", "k", "v"):
            return self.qkv
        if self.gate_up and role in ("gate", "up"):
            return self.gate_up
        return f"{role}_proj"

    def proj_path(self, role: str) -> str:
        """Path of the Linear holding projection `role` from a decoder layer (`self_attn.q_proj`)."""
        return f"{self.attn if role in ATTN_ROLES else self.mlp}.{self.proj_attr(role)}"

    def fused_roles(self, role: str) -> tuple[str, ...]:
        """The roles sharing `role`'s Linear, in row order (just `role` when it has its own)."""
        if self.qkv and role in ("q", "k", "v"):
            return ("q", "k", "v")
        if self.gate_up and role in ("gate", "up"):
            return ("gate", "up")
        return (role,)

    def modules(self, roles: tuple[str, ...] = ROLES) -> tuple[str, ...]:
        """The distinct Linear paths (from a layer) holding `roles`, in role order."""
        return tuple(dict.fromkeys(self.proj_path(r) for r in roles))

    @property
    def layer_norms(self) -> tuple[str, ...]:
        """Every norm of a layer over the hidden size, in execution order."""
        return self.pre_attn_norms + self.post_attn_norms + self.pre_mlp_norms + self.post_mlp_norms

    @property
    def lora_targets(self) -> tuple[str, ...]:
        """Default LoRA targets: every attention and MLP Linear (peft matches the attribute names)."""
        return tuple(dict.fromkeys(self.proj_attr(r) for r in ROLES))

    @property
    def inner_norms(self) -> tuple[str, ...]:
        """Every norm inside attention (head norms, then projection norms), paths from a layer."""
        return self.head_norms + tuple(path for path, _ in self.proj_norms)

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
