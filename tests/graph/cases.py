"""Tiny configurations shared by the graph tests: (id, family, heads, kv_heads, config overrides).

`CASES` share LLaMA's module layout (the hand-written masks of test_mask.py follow it); `ALL` adds the
other families: head norms (Qwen3, Gemma 3), sandwich norms (Gemma), fused projections (Phi-3), norms
over whole projections (OLMo 2)."""

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
FAMILY_CASES = [
    ("qwen3-4x2", "qwen3", 4, 2, {}),
    ("gemma2-4x2", "gemma2", 4, 2, {}),
    ("gemma3-4x2-tied", "gemma3_text", 4, 2, {"tie_word_embeddings": True}),
    ("phi3-4x2", "phi3", 4, 2, {}),
    ("olmo2-4x2", "olmo2", 4, 2, {}),
]
ALL = CASES + FAMILY_CASES
ALL_IDS = [c[0] for c in ALL]
