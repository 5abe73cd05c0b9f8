"""Which llama.cpp architecture a model maps to, and what llama.cpp cannot express (refused, clearly).

- LLaMA and Mistral with the same widths in every layer -> `llama`; with per-layer widths -> `deci`
  (DeciLM / Nemotron-NAS: per-layer `head_count`, `head_count_kv`, `feed_forward_length`; optional
  `attn_output` and `ffn_down` biases only).
- Qwen2 with uniform widths -> `qwen2`; non-uniform Qwen2 has no llama.cpp architecture (`deci` has no
  q/k/v biases) and is refused.
- Other families (Gemma, Phi-3, OLMo 2, Qwen3) are refused: their norms or fused projections need
  tensors this exporter does not map.
"""

from __future__ import annotations

from dataclasses import dataclass

from llmprune.arch import ROLES, Layout
from llmprune.errors import LlmpruneError

LLAMA_LIKE = ("llama", "mistral")
DECI_BIASES = frozenset({"o", "down"})  # deci.cpp reads only these optional biases


@dataclass(frozen=True)
class Target:
    """A GGUF architecture and how the tensors are laid out for it."""

    arch: str  # general.architecture
    per_layer: bool  # head counts and MLP width as per-layer arrays
    permute_qk: bool  # q/k rows reordered for interleaved rotary (llama, deci)


def choose_target(layout: Layout, config, norm_eps: list[dict[str, float]]) -> Target:
    """The target of a model (its `describe` layout, config, per-layer norm eps); LlmpruneError naming why
    llama.cpp cannot run it otherwise."""
    fam = layout.family.model_type
    _check_common(layout, config, norm_eps)
    uniform = layout.uniform is not None
    if fam in LLAMA_LIKE:
        if uniform:
            return Target("llama", False, True)
        extra = sorted(layout.biases - DECI_BIASES, key=ROLES.index)
        if extra:
            raise LlmpruneError(
                f"a {fam} model with per-layer widths exports to llama.cpp's `deci` architecture, which has no "
                f"bias on the {', '.join(extra)} projections; llama.cpp cannot express this model"
            )
        return Target("deci", True, True)
    if fam == "qwen2":
        if not uniform:
            raise LlmpruneError(
                "a qwen2 model with per-layer widths has no llama.cpp architecture: `deci` (the only one with "
                "per-layer widths) has no q/k/v biases; prune with uniform widths to export it to GGUF"
            )
        if layout.biases != frozenset({"q", "k", "v"}):
            raise LlmpruneError(
                f"llama.cpp's qwen2 expects biases on q, k and v only, this model has {sorted(layout.biases)}"
            )
        return Target("qwen2", False, False)
    raise LlmpruneError(
        f"GGUF export supports the llama, mistral and (uniform) qwen2 families; {fam} needs tensors "
        "(norms, fused projections) this exporter does not map yet"
    )


def _check_common(layout: Layout, config, norm_eps: list[dict[str, float]]) -> None:
    fam = layout.family.model_type
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
