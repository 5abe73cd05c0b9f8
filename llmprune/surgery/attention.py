"""Remove (or mask) query heads and KV heads of one attention module, GQA-aware.

Layout (llama/mistral/qwen2, transformers 5): q_proj has `heads * head_dim` rows, head after head;
k_proj/v_proj have `kv_heads * head_dim` rows; query head `h` reads KV head `h // group` where
`group = heads // kv_heads` (`repeat_kv`). o_proj has one column block per query head.
The plan guarantees that every kept KV head keeps the same number `g'` of its query heads, so after
slicing the kept query heads are still laid out KV group after KV group and query head `j` reads
KV head `j // g'`: the module only needs `num_key_value_groups = g'`.

Attributes the transformers 5.23 attention modules read at run time: `head_dim` (unchanged),
`num_key_value_groups` (eager/sdpa/flex `repeat_kv`), `scaling` (from head_dim, unchanged),
`layer_idx` (KV cache slot; renumbered by layer removal), `config` (only `_attn_implementation`).
Older releases also kept `num_heads`/`num_key_value_heads`/`hidden_size`; they are updated when present.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from llmprune.errors import LlmpruneError
from llmprune.plan import kept_indices
from llmprune.surgery.linear import head_rows, slice_linear, zero_linear_


def prune_heads_(attn: nn.Module, heads: Sequence[int], kv_heads: Sequence[int]) -> None:
    """Remove query heads `heads` and KV heads `kv_heads` (current indices) from `attn`, in place."""
    if not heads and not kv_heads:
        return
    hd = attn.head_dim
    n_q = attn.q_proj.out_features // hd
    n_kv = attn.k_proj.out_features // hd
    keep_q = kept_indices(heads, n_q)
    keep_kv = kept_indices(kv_heads, n_kv)
    if not keep_q or not keep_kv or len(keep_q) % len(keep_kv):
        raise LlmpruneError(
            f"cannot keep {len(keep_q)} query heads over {len(keep_kv)} KV heads in layer {attn.layer_idx}; "
            "each kept KV head must keep the same non-zero number of query heads (fix the plan)"
        )
    q_rows, kv_rows = head_rows(keep_q, hd), head_rows(keep_kv, hd)
    attn.q_proj = slice_linear(attn.q_proj, out_keep=q_rows)
    attn.k_proj = slice_linear(attn.k_proj, out_keep=kv_rows)
    attn.v_proj = slice_linear(attn.v_proj, out_keep=kv_rows)
    attn.o_proj = slice_linear(attn.o_proj, in_keep=q_rows)
    set_head_counts(attn, len(keep_q), len(keep_kv))


def set_head_counts(attn: nn.Module, heads: int, kv_heads: int) -> None:
    """Update the per-module attributes that depend on the head counts."""
    attn.num_key_value_groups = heads // kv_heads
    if hasattr(attn, "num_heads"):
        attn.num_heads = heads
    if hasattr(attn, "num_key_value_heads"):
        attn.num_key_value_heads = kv_heads


def mask_heads_(attn: nn.Module, heads: Sequence[int], kv_heads: Sequence[int]) -> None:
    """Zero every member of the removed heads in place: q rows, k/v rows of removed KV heads, o columns."""
    hd = attn.head_dim
    q_rows, kv_rows = head_rows(heads, hd), head_rows(kv_heads, hd)
    zero_linear_(attn.q_proj, rows=q_rows)
    zero_linear_(attn.k_proj, rows=kv_rows)
    zero_linear_(attn.v_proj, rows=kv_rows)
    zero_linear_(attn.o_proj, cols=q_rows)
