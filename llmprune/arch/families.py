"""The registry of supported families: one entry each (see `llmprune.arch.family.Family` for the fields).

llama, mistral and qwen2 share transformers 5's layout: `model.{embed_tokens, layers[i].{self_attn.
{q,k,v,o}_proj, mlp.{gate,up,down}_proj, input_layernorm, post_attention_layernorm}, norm}` and
`lm_head`; they differ in their biases.
"""

from __future__ import annotations

from llmprune.arch.family import Family, register_family

LLAMA = register_family(
    Family(
        "llama",
        "LlamaForCausalLM",
        qkv_bias="attention_bias",
        o_bias="attention_bias",
        mlp_bias="mlp_bias",
    )
)
MISTRAL = register_family(Family("mistral", "MistralForCausalLM"))
QWEN2 = register_family(Family("qwen2", "Qwen2ForCausalLM", qkv_bias=True))
