"""Pruning time and peak memory (graph + scores + surgery) at a real shape with random weights.

    python bench/prune_speed.py --shape llama7b --device cuda      # LLaMA-7B shape on a GPU (bf16)
    python bench/prune_speed.py --shape smollm2 --device cpu       # SmolLM2-135M shape on this CPU

For comparison, the same run times Torch-Pruning's LLM recipe (MetaPruner + magnitude importance on the
traced graph), so the ratio is measured on the same machine at the same time. Prints a table and JSON.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time

import torch

SHAPES = {
    "llama7b": dict(
        hidden_size=4096,
        intermediate_size=11008,
        num_hidden_layers=32,
        num_attention_heads=32,
        num_key_value_heads=32,
        vocab_size=32000,
    ),
    "smollm2": dict(
        hidden_size=576,
        intermediate_size=1536,
        num_hidden_layers=30,
        num_attention_heads=9,
        num_key_value_heads=3,
        vocab_size=49152,
        tie_word_embeddings=True,
    ),
    "tiny": dict(
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=4,
        num_attention_heads=4,
        num_key_value_heads=2,
        vocab_size=256,
    ),
}


def build(shape: str, device: str, dtype: torch.dtype):
    from transformers import LlamaConfig, LlamaForCausalLM

    cfg = LlamaConfig(**SHAPES[shape], max_position_embeddings=2048, attn_implementation="eager")
    with torch.device(device):
        model = LlamaForCausalLM(cfg).to(dtype)
    return model.eval()


def peak_bytes(device: str) -> int:
    if device.startswith("cuda"):
        return torch.cuda.max_memory_allocated()
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def reset_peak(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()


def ours(model, args) -> dict:
    from llmprune.prune.config import PruneConfig
    from llmprune.prune.pipeline import plan_pruning
    from llmprune.surgery import prune_

    g = torch.Generator().manual_seed(0)  # random tokens: this measures speed, not quality
    batches = torch.randint(0, model.config.vocab_size, (args.samples, args.seq_len), generator=g)
    cfg = PruneConfig(ratio=0.2, importance=args.importance, layers=args.layers, ranking="layer", reconstruct=False)
    reset_peak(args.device)
    t0 = time.perf_counter()
    result = plan_pruning(model, None, cfg, batches=batches, progress=False)
    t = time.perf_counter()
    prune_(model, result.plan)
    if args.device.startswith("cuda"):
        torch.cuda.synchronize()
    result.timings["surgery"] = time.perf_counter() - t
    total = time.perf_counter() - t0
    return {"seconds": total, "timings": result.timings, "peak_gib": peak_bytes(args.device) / 2**30}


def torch_pruning_baseline(model, args) -> dict:
    import torch_pruning as tp

    reset_peak(args.device)
    t0 = time.perf_counter()
    example = torch.randint(0, model.config.vocab_size, (1, 64), device=args.device)
    heads = {m.q_proj: m.config.num_attention_heads for m in model.modules() if hasattr(m, "q_proj")}
    pruner = tp.pruner.MetaPruner(
        model,
        example,
        importance=tp.importance.GroupMagnitudeImportance(p=2),
        pruning_ratio=0.2,
        ignored_layers=[model.lm_head],
        num_heads=heads,
        prune_head_dims=False,
        prune_num_heads=True,
        head_pruning_ratio=0.2,
        global_pruning=False,
        output_transform=lambda out: out.logits.sum(),
    )
    for g in pruner.step(interactive=True):
        g.prune()
    if args.device.startswith("cuda"):
        torch.cuda.synchronize()
    return {"seconds": time.perf_counter() - t0, "peak_gib": peak_bytes(args.device) / 2**30}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shape", choices=sorted(SHAPES), default="smollm2")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--importance", default="element1")
    ap.add_argument("--layers", default=None, help="inclusive range, e.g. 4-29 for LLaMA-7B")
    ap.add_argument("--samples", type=int, default=10)
    ap.add_argument("--seq-len", type=int, default=64)
    ap.add_argument("--skip-baseline", action="store_true")
    args = ap.parse_args()
    dtype = torch.bfloat16 if args.device.startswith("cuda") else torch.float32
    out = {"shape": args.shape, "device": args.device, "dtype": str(dtype)}
    out["llmprune"] = ours(build(args.shape, args.device, dtype), args)
    mine = out["llmprune"]
    print(f"llmprune: {mine['seconds']:.2f} s, peak {mine['peak_gib']:.2f} GiB", file=sys.stderr, flush=True)
    if not args.skip_baseline:  # Torch-Pruning's MetaPruner can take many minutes on a CPU: printed last
        print("torch-pruning baseline (MetaPruner, magnitude) ...", file=sys.stderr, flush=True)
        try:
            out["torch_pruning"] = torch_pruning_baseline(build(args.shape, args.device, dtype), args)
            out["speedup"] = out["torch_pruning"]["seconds"] / out["llmprune"]["seconds"]
        except Exception as e:  # the baseline's tracer may not support this transformers version
            out["torch_pruning"] = {"error": f"{type(e).__name__}: {e}"[:300]}
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
