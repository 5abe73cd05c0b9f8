"""A random-weight stand-in of a model's shape, for machines without its weights: bf16 safetensors shards,
config.json and a tokenizer of the shape's vocabulary, so that recipes run end to end on the real sizes.

    python bench/make_shape.py --shape llama7b --out /data/llama7b-shape     # 13.5 GB, LLaMA-7B's shapes
    llmprune run recipes/llama7b_20pct.yaml --set model=/data/llama7b-shape --set eval.max_windows=4 --out OUT

The weights are N(0, 0.02) (norms 1), generated and written one shard at a time (memory: one shard). The
tokenizer is a byte-level BPE trained on the local calibration text ($LLMPRUNE_DATA_DIR: WikiText-2
validation, the C4 sample) and padded with `<extra_i>` tokens to the exact vocabulary size. Perplexities
of such a model mean nothing; memory, time and the pruned shapes are what it is for.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from safetensors.torch import save_file

from llmprune.fsutil import atomic_dir

SHAPES = {
    # LLaMA-7B (huggyllama/llama-7b): 6,738,415,616 parameters
    "llama7b": dict(
        hidden_size=4096, intermediate_size=11008, num_hidden_layers=32, num_attention_heads=32, vocab_size=32000
    ),
    # a small one with the same structure, for tests of this script
    "tiny": dict(hidden_size=64, intermediate_size=160, num_hidden_layers=4, num_attention_heads=4, vocab_size=512),
}
SHARD_BYTES = 2 * 2**30


def config_of(shape: dict) -> dict:
    from transformers import LlamaConfig

    cfg = LlamaConfig(
        **shape,
        num_key_value_heads=shape["num_attention_heads"],
        max_position_embeddings=2048,
        rms_norm_eps=1e-6,
        tie_word_embeddings=False,
        bos_token_id=1,
        eos_token_id=2,
        dtype="bfloat16",
    )
    return cfg.to_dict()


def tensor_shapes(cfg: dict) -> list[tuple[str, tuple[int, ...]]]:
    """Every weight of a LLaMA model of config `cfg`, in file order."""
    h, i, v = cfg["hidden_size"], cfg["intermediate_size"], cfg["vocab_size"]
    kv = cfg["num_key_value_heads"] * (h // cfg["num_attention_heads"])
    out = [("model.embed_tokens.weight", (v, h))]
    for n in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{n}."
        out += [
            (p + "input_layernorm.weight", (h,)),
            (p + "self_attn.q_proj.weight", (h, h)),
            (p + "self_attn.k_proj.weight", (kv, h)),
            (p + "self_attn.v_proj.weight", (kv, h)),
            (p + "self_attn.o_proj.weight", (h, h)),
            (p + "post_attention_layernorm.weight", (h,)),
            (p + "mlp.gate_proj.weight", (i, h)),
            (p + "mlp.up_proj.weight", (i, h)),
            (p + "mlp.down_proj.weight", (h, i)),
        ]
    return [*out, ("model.norm.weight", (h,)), ("lm_head.weight", (v, h))]


def write_weights(folder: Path, cfg: dict, seed: int) -> int:
    """Random bf16 weights in shards of at most SHARD_BYTES, plus the index; returns the parameter count."""
    g = torch.Generator().manual_seed(seed)
    shapes = tensor_shapes(cfg)
    shards: list[list[tuple[str, tuple[int, ...]]]] = [[]]
    size = 0
    for name, shape in shapes:
        nbytes = 2 * torch.Size(shape).numel()
        if shards[-1] and size + nbytes > SHARD_BYTES:
            shards.append([])
            size = 0
        shards[-1].append((name, shape))
        size += nbytes
    weight_map, total = {}, 0
    for k, shard in enumerate(shards, 1):
        file = f"model-{k:05d}-of-{len(shards):05d}.safetensors"
        tensors = {}
        for name, shape in shard:
            if name.endswith("norm.weight"):
                tensors[name] = torch.ones(shape, dtype=torch.bfloat16)
            else:
                tensors[name] = (torch.randn(shape, generator=g) * 0.02).to(torch.bfloat16)
            weight_map[name] = file
            total += tensors[name].numel()
        save_file(tensors, str(folder / file), metadata={"format": "pt"})
        print(f"  {file}: {len(shard)} tensors", flush=True)
    index = {"metadata": {"total_size": 2 * total}, "weight_map": weight_map}
    (folder / "model.safetensors.index.json").write_text(json.dumps(index, indent=2) + "\n")
    return total


def training_text() -> list[str]:
    from llmprune.data.sources import load_text

    texts = []
    for source, split in (("wikitext2", "valid"), ("c4", None)):
        try:
            texts.append(load_text(source, split))
        except Exception as e:  # a missing source only makes the tokenizer's merges poorer
            print(f"  (tokenizer: {source} not used: {e})")
    return texts or ["the quick brown fox jumps over the lazy dog"]


def write_tokenizer(folder: Path, vocab_size: int) -> None:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    specials = ["<unk>", "<s>", "</s>"]
    tk = Tokenizer(models.BPE(unk_token="<unk>"))
    tk.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tk.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tk.train_from_iterator(training_text(), trainer=trainer)
    missing = vocab_size - tk.get_vocab_size()
    if missing > 0:
        tk.add_tokens([f"<extra_{i}>" for i in range(missing)])
    assert tk.get_vocab_size() == vocab_size, (tk.get_vocab_size(), vocab_size)
    fast = PreTrainedTokenizerFast(tokenizer_object=tk, unk_token="<unk>", bos_token="<s>", eos_token="</s>")
    fast.save_pretrained(folder)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shape", choices=sorted(SHAPES), default="llama7b")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    t0 = time.perf_counter()
    cfg = config_of(SHAPES[args.shape])
    with atomic_dir(args.out, "model") as tmp:
        print(f"writing a random {args.shape} stand-in to {args.out}")
        (tmp / "config.json").write_text(json.dumps(cfg, indent=2) + "\n")
        write_tokenizer(tmp, cfg["vocab_size"])
        n = write_weights(tmp, cfg, args.seed)
    print(f"{n:,} parameters (bf16, {2 * n / 1e9:.1f} GB) in {time.perf_counter() - t0:.0f} s -> {args.out}")


if __name__ == "__main__":
    main()
