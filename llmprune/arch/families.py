"""The registry of supported families: one entry each (see `llmprune.arch.family.Family` for the fields).

Every family's layers hold `self_attn.{q,k,v,o}_proj` (Phi-3: a fused `qkv_proj`) and
`mlp.{gate,up,down}_proj` (Phi-3: a fused `gate_up_proj`); they differ in biases, in their norms and in
how embeddings and norms scale.
"""

from __future__ import annotations

from llmprune.arch.family import Family, register_family

ATTENTION_BIAS = {"qkv_bias": "attention_bias", "o_bias": "attention_bias"}  # config.attention_bias: q, k, v and o

# llama.cpp runs uniform LLaMA / Mistral / Qwen2 as `llama` (optional biases on every projection; llama.cpp's
# own `qwen2` graph sizes q by the hidden size, so it cannot load pruned heads), per-layer widths as `deci`
_LLAMA_GGUF = dict(gguf_arch="llama", gguf_nonuniform_arch="deci")
LLAMA = register_family(Family("llama", "LlamaForCausalLM", mlp_bias="mlp_bias", **ATTENTION_BIAS, **_LLAMA_GGUF))
MISTRAL = register_family(Family("mistral", "MistralForCausalLM", **_LLAMA_GGUF))
QWEN2 = register_family(Family("qwen2", "Qwen2ForCausalLM", qkv_bias=True, **_LLAMA_GGUF))
# q_norm / k_norm over head_dim, applied to every head before rotary
QWEN3 = register_family(
    Family("qwen3", "Qwen3ForCausalLM", head_norms=("self_attn.q_norm", "self_attn.k_norm"), **ATTENTION_BIAS)
)
# sandwich norms with (1 + w) scaling around attention and MLP; embeddings scaled by sqrt(hidden size)
_GEMMA = dict(
    pre_attn_norms=("input_layernorm",),
    post_attn_norms=("post_attention_layernorm",),
    pre_mlp_norms=("pre_feedforward_layernorm",),
    post_mlp_norms=("post_feedforward_layernorm",),
    norm_eps="eps",
    norm_offset=1.0,
    scaled_embedding=True,
    **ATTENTION_BIAS,
)
GEMMA2 = register_family(Family("gemma2", "Gemma2ForCausalLM", **_GEMMA))
GEMMA3 = register_family(
    Family(
        "gemma3_text",
        "Gemma3ForCausalLM",
        head_norms=("self_attn.q_norm", "self_attn.k_norm"),
        modeling="transformers.models.gemma3.modeling_gemma3",
        **_GEMMA,
    )
)
# fused qkv_proj and gate_up_proj; the attention splits them by the config's head counts
PHI3 = register_family(Family("phi3", "Phi3ForCausalLM", qkv="qkv_proj", gate_up="gate_up_proj", config_heads=True))
# norms after attention and MLP only; q_norm / k_norm over the whole q / k projection
OLMO2 = register_family(
    Family(
        "olmo2",
        "Olmo2ForCausalLM",
        pre_attn_norms=(),
        post_attn_norms=("post_attention_layernorm",),
        pre_mlp_norms=(),
        post_mlp_norms=("post_feedforward_layernorm",),
        proj_norms=(("self_attn.q_norm", "q"), ("self_attn.k_norm", "k")),
        **ATTENTION_BIAS,
    )
)
