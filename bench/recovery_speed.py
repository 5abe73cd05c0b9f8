"""Training throughput: llmprune's recovery loop vs a plain PEFT + AdamW loop, in the same run.

    python bench/recovery_speed.py --shape tiny                       # CPU, seconds
    python bench/recovery_speed.py --shape smollm2 --steps 4          # CPU, SmolLM2-135M-20% shape
    python bench/recovery_speed.py --shape llama7b-20 --micro-batch-size 16 --steps 20   # one GPU

Both loops train LoRA (r=8, alpha 16, dropout 0.05, q/k/v/o/gate/up/down) on the same Alpaca examples
(cutoff 256) of a model with random weights: `tiny` (a 4-layer llama), `smollm2` (SmolLM2-135M's shape,
every layer pruned ~20%), `llama7b-20` (LLaMA-7B pruned like LLM-Pruner's 20%: layers 4-29 lose 8 of
32 heads and 25% of the MLP channels, 5.4B parameters). On GPU both use bf16 weights, bf16 autocast
and SDPA attention.

- plain: every example padded to the cutoff (HF `padding="max_length"`), `model(..., labels=)`, torch
  AdamW (for-each), `loss.backward()` per micro-batch: the usual PEFT script.
- ours: `llmprune.recovery.recover` (packed rows, fused AdamW on GPU, per-token loss).

Throughput counts real (non-padding) tokens per second after `--warmup` steps; the table prints
both and their ratio.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time

import torch

from llmprune.prune.plan import BaseShape, LayerPlan, PrunePlan
from llmprune.recovery import RecoveryConfig, recover
from llmprune.recovery.data import alpaca_examples, load_source
from llmprune.recovery.lora import attach_lora

SHAPES = {
    "tiny": dict(hidden_size=64, intermediate_size=192, num_hidden_layers=4, num_attention_heads=4, vocab_size=49152),
    "smollm2": dict(
        hidden_size=576, intermediate_size=1536, num_hidden_layers=30, num_attention_heads=9, num_key_value_heads=3
    ),
    "llama7b-20": dict(hidden_size=4096, intermediate_size=11008, num_hidden_layers=32, num_attention_heads=32),
}


def _plan(base: BaseShape, shape: str) -> PrunePlan:
    if shape == "llama7b-20":
        layers, heads, mlp = range(4, 30), tuple(range(8)), 2752
    else:  # one query head per KV group where possible, 20% of the MLP channels, every layer
        layers, heads, mlp = (
            range(base.num_layers),
            tuple(range(0, base.num_heads, base.group_size)),
            base.intermediate_size // 5,
        )
        if base.group_size == 1:
            heads = (0,)
    lps = tuple(
        LayerPlan(layer=i, heads=heads, kv_heads=heads if base.group_size == 1 else (), mlp_channels=tuple(range(mlp)))
        for i in layers
    )
    return PrunePlan(base=base, layers=lps)


def build_model(shape: str, device: torch.device, dtype: torch.dtype):
    """A random-weight llama of `shape`, pruned by `_plan` with llmprune's surgery."""
    from transformers import AutoConfig, AutoModelForCausalLM

    from llmprune.surgery import prune_

    kw = {"vocab_size": 49152 if shape != "llama7b-20" else 32000, **SHAPES[shape]}
    config = AutoConfig.for_model("llama", max_position_embeddings=2048, attn_implementation="sdpa", **kw)
    torch.manual_seed(0)
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(config, dtype=dtype)
    return prune_(model, _plan(BaseShape.from_config(config), shape))


def plain_loop(model, tok, records, cfg: RecoveryConfig, steps: int, warmup: int, device) -> float:
    """The usual PEFT script: pad to max length, labels=..., foreach AdamW. Returns real tokens/s."""
    peft_model = attach_lora(model, cfg)
    peft_model.train()
    opt = torch.optim.AdamW([p for p in peft_model.parameters() if p.requires_grad], lr=cfg.lr)
    texts = [e for e in _texts(records)]
    m = cfg.micro_batch_size
    tokens, t0 = 0, time.perf_counter()
    autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.type == "cuda")
    for step in range(steps + warmup):
        if step == warmup:
            _sync(device)
            tokens, t0 = 0, time.perf_counter()
        batch = texts[(step * m) % len(texts) :][:m]
        enc = tok(batch, padding="max_length", truncation=True, max_length=cfg.cutoff, return_tensors="pt").to(device)
        labels = enc["input_ids"].masked_fill(enc["attention_mask"] == 0, -100)
        with autocast:
            loss = peft_model(**enc, labels=labels).loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        tokens += int(enc["attention_mask"].sum())
    _sync(device)
    seconds = time.perf_counter() - t0
    peft_model.unload()
    return tokens / seconds


def _texts(records):
    from llmprune.data.instructions import format_alpaca

    return [format_alpaca(r) + r["output"] for r in records]


def _sync(device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shape", choices=list(SHAPES), default="tiny")
    ap.add_argument("--steps", type=int, default=8, help="timed optimizer steps per loop")
    ap.add_argument("--warmup", type=int, default=2, help="untimed steps first")
    ap.add_argument("--micro-batch-size", type=int, default=4)
    ap.add_argument("--cutoff", type=int, default=256)
    ap.add_argument("--tokenizer", default="smollm2-135m", help="tokenizer of the Alpaca examples")
    ap.add_argument("--json", default=None, help="also write the results to this file")
    args = ap.parse_args()

    from llmprune.models.load import load_tokenizer

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    tok = load_tokenizer(args.tokenizer)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    m = args.micro_batch_size
    n_rows = (args.steps + args.warmup) * m
    _, records = load_source("alpaca")
    records = records[: n_rows * 4]  # ours packs ~2-3 examples per row: give both loops enough
    cfg = RecoveryConfig(micro_batch_size=m, batch_size=m, cutoff=args.cutoff, save_every=0, warmup_steps=0)
    model = build_model(args.shape, device, dtype)
    params = sum(p.numel() for p in model.parameters())
    plain = plain_loop(model, tok, records, cfg, args.steps, args.warmup, device)

    with tempfile.TemporaryDirectory() as tmp:
        path = f"{tmp}/alpaca.json"
        with open(path, "w") as f:
            json.dump(records, f)
        ours_cfg = cfg.model_copy(update={"data": path, "steps": args.steps + args.warmup})
        fill = alpaca_examples(records[:256], tok, cfg)
        stats = recover(model, tok, ours_cfg, f"{tmp}/lora", progress=False)
    tps_ours = stats["tokens_per_s"]
    result = {
        "shape": args.shape,
        "params": params,
        "device": str(device),
        "micro_batch_size": m,
        "cutoff": args.cutoff,
        "plain_tokens_per_s": round(plain, 1),
        "ours_tokens_per_s": tps_ours,
        "ratio": round(tps_ours / plain, 2),
        "row_fill": stats["data"]["fill"],
        "mean_example_tokens": round(sum(len(e.ids) for e in fill) / len(fill), 1),
    }
    print(f"{'loop':<22}{'tokens/s':>12}")
    print(f"{'plain PEFT + AdamW':<22}{plain:>12,.0f}")
    print(f"{'llmprune recover':<22}{tps_ours:>12,.0f}")
    print(f"ratio {result['ratio']:.2f}x  ({args.shape}, {params / 1e6:,.0f}M params, {device}, micro-batch {m})")
    print(json.dumps(result))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
