"""llmprune module paths <-> GGUF tensor names, the q/k row permutation llama.cpp expects, and outtypes.

llama.cpp's `llama` and `deci` graphs apply rotary embeddings to interleaved pairs; Hugging Face rotates
halves. Its converter (`convert_hf_to_gguf.py`, `LlamaModel.permute`) therefore reorders the q and k rows
of every head: `reshape(n_head, 2, head_dim // 2, ...).swapaxes(1, 2)`. `permute_rows` does that and
`unpermute_rows` undoes it (which graphs need it: `llmprune.ggufio.target.PERMUTED_ARCHS`).
"""

from __future__ import annotations

import numpy as np
import torch
from gguf import MODEL_TENSOR, TENSOR_NAMES, GGMLQuantizationType, LlamaFileType

from llmprune.arch import ROLES, Family

ROLE_TENSORS = {
    "q": MODEL_TENSOR.ATTN_Q,
    "k": MODEL_TENSOR.ATTN_K,
    "v": MODEL_TENSOR.ATTN_V,
    "o": MODEL_TENSOR.ATTN_OUT,
    "gate": MODEL_TENSOR.FFN_GATE,
    "up": MODEL_TENSOR.FFN_UP,
    "down": MODEL_TENSOR.FFN_DOWN,
}
# outtype -> (type of 2-D weights, general.file_type); norms and biases stay F32 as in llama.cpp's converter
OUTTYPES = {
    "f32": (GGMLQuantizationType.F32, LlamaFileType.ALL_F32),
    "f16": (GGMLQuantizationType.F16, LlamaFileType.MOSTLY_F16),
    "bf16": (GGMLQuantizationType.BF16, LlamaFileType.MOSTLY_BF16),
    "q8_0": (GGMLQuantizationType.Q8_0, LlamaFileType.MOSTLY_Q8_0),
}


def tensor_names(family: Family, num_layers: int, tied: bool) -> dict[str, str]:
    """{GGUF tensor base name (no `.weight`/`.bias`): llmprune module path} for a llama-style layout."""
    names = {
        TENSOR_NAMES[MODEL_TENSOR.TOKEN_EMBD]: family.embed,
        TENSOR_NAMES[MODEL_TENSOR.OUTPUT_NORM]: family.final_norm,
    }
    if not tied:
        names[TENSOR_NAMES[MODEL_TENSOR.OUTPUT]] = family.lm_head
    for i in range(num_layers):
        layer = f"{family.layers}.{i}"
        names[TENSOR_NAMES[MODEL_TENSOR.ATTN_NORM].format(bid=i)] = f"{layer}.{family.pre_attn_norms[0]}"
        names[TENSOR_NAMES[MODEL_TENSOR.FFN_NORM].format(bid=i)] = f"{layer}.{family.pre_mlp_norms[0]}"
        for role in ROLES:
            names[TENSOR_NAMES[ROLE_TENSORS[role]].format(bid=i)] = f"{layer}.{family.proj_path(role)}"
    return names


def permute_rows(t: torch.Tensor, heads: int) -> torch.Tensor:
    """Hugging Face q/k rows (weight or bias) of `heads` heads -> llama.cpp's interleaved order."""
    return t.reshape(heads, 2, t.shape[0] // heads // 2, *t.shape[1:]).transpose(1, 2).reshape(t.shape)


def unpermute_rows(t: torch.Tensor, heads: int) -> torch.Tensor:
    """The inverse of `permute_rows`."""
    return t.reshape(heads, t.shape[0] // heads // 2, 2, *t.shape[1:]).transpose(1, 2).reshape(t.shape)


def encode(t: torch.Tensor, qtype: GGMLQuantizationType) -> tuple[np.ndarray, GGMLQuantizationType]:
    """`t` as GGUF data: 1-D tensors in F32, others in `qtype` (Q8_0 needs rows of whole 32-blocks, else F16,
    as llama.cpp's converter falls back). Returns (array for GGUFWriter.add_tensor, its type)."""
    from gguf.quants import quantize

    data = t.detach().to(torch.float32).cpu().numpy()
    if data.ndim < 2 or qtype == GGMLQuantizationType.F32:
        return data, GGMLQuantizationType.F32
    if qtype == GGMLQuantizationType.F16:
        return data.astype(np.float16), qtype
    if qtype == GGMLQuantizationType.Q8_0 and data.shape[-1] % 32:
        return data.astype(np.float16), GGMLQuantizationType.F16
    return quantize(data, qtype), qtype


def decode(data: np.ndarray, qtype: GGMLQuantizationType) -> torch.Tensor:
    """A GGUF tensor's data (as `GGUFReader` gives it) as a float32 torch tensor in row-major order."""
    from gguf.quants import dequantize

    return torch.from_numpy(np.array(dequantize(data, qtype), dtype=np.float32))  # a writable copy of the mmap
