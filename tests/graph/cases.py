"""Tiny configurations shared by the graph tests: (id, family, heads, kv_heads, config overrides)."""

CASES = [
    ("llama-mha-8x8", "llama", 8, 8, {}),
    ("llama-gqa2-8x4", "llama", 8, 4, {}),
    ("llama-gqa3-6x2", "llama", 6, 2, {}),
    ("llama-gqa4-8x2", "llama", 8, 2, {}),
    ("llama-mqa8-8x1", "llama", 8, 1, {}),
    ("mistral-8x2", "mistral", 8, 2, {}),
    ("qwen2-6x2", "qwen2", 6, 2, {}),
    ("llama-bias-4x2", "llama", 4, 2, {"attention_bias": True, "mlp_bias": True}),
    ("llama-tied-4x2", "llama", 4, 2, {"tie_word_embeddings": True}),
]
IDS = [c[0] for c in CASES]
