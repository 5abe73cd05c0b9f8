"""Does llama.cpp compute what llmprune computes? WikiText-2 perplexity of exported GGUF files in
`llama-perplexity` against llmprune's, on the same text, tokens and windows.

    python bench/llama_cpp_build.py    # once: builds llama-perplexity and llama-bench
    python bench/gguf_parity.py dense=smollm2-135m uniform=runs/u20 nonuniform=runs/s20 \\
        --outtypes f32,q8_0 --chunks 64 --out bench-results/gguf_parity.json

Each MODEL (NAME=SPEC: alias, folder, llmprune folder) is exported with `llmprune export` per outtype.
llama-perplexity (`-c 128`) cuts the tokenized test text into 128-token chunks and scores the second half
of each (tokens 65..127, the first half being context only; BOS replaces a chunk's first token when the
vocabulary adds one). llmprune's side scores exactly those tokens with the fp32 source model
(`llmprune_ppl`), so the two numbers differ only by the arithmetic. The gap: f32 within 0.5%, q8_0
within 2% (issue #18). llmprune's own protocol (every token of a window) is printed beside it, for reference.
Prints a markdown table and writes JSON with --out.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import subprocess
import tempfile
from pathlib import Path

import torch
from llama_cpp_build import binary  # the sibling script (bench/ is on sys.path when run)

from llmprune.data.sources import load_text
from llmprune.eval.ppl import perplexity
from llmprune.fsutil import atomic_write_json
from llmprune.ggufio.writer import export_gguf
from llmprune.models import load_model

CTX = 128


def llama_cpp_ppl(gguf_path: Path, text_file: Path, chunks: int, threads: int) -> float:
    cmd = [str(binary("llama-perplexity")), "-m", str(gguf_path), "-f", str(text_file), "-c", str(CTX)]
    cmd += ["-b", str(CTX), "-t", str(threads), "--chunks", str(chunks)]
    run = subprocess.run(cmd, capture_output=True, text=True, check=True)
    m = re.search(r"Final estimate: PPL = ([0-9.]+)", run.stdout + run.stderr)
    if not m:
        raise SystemExit(f"no PPL in llama-perplexity's output:\n{run.stderr[-2000:]}")
    return float(m.group(1))


def llmprune_ppl(model, tok, text: str, chunks: int, add_bos: bool) -> float:
    """llama-perplexity's scoring, in torch: chunk k is tokens [k*CTX, (k+1)*CTX); tokens CTX/2+1..CTX-1 are scored."""
    ids = tok(text, add_special_tokens=False, return_tensors="pt").input_ids[0]
    if add_bos:
        ids = torch.cat([torch.tensor([tok.bos_token_id]), ids])  # llama.cpp tokenizes with BOS first
    n = min(chunks, ids.numel() // CTX)
    windows = ids[: n * CTX].reshape(n, CTX).clone()
    if add_bos:
        windows[:, 0] = tok.bos_token_id
    first = CTX // 2
    nll, count = 0.0, 0
    with torch.no_grad():
        for w in windows.split(8):
            logp = torch.log_softmax(model(input_ids=w).logits.float(), dim=-1)
            target = w[:, first + 1 :]
            nll -= logp[:, first:-1].gather(-1, target.unsqueeze(-1)).sum().item()
            count += target.numel()
    return math.exp(nll / count)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("models", nargs="+", help="NAME=SPEC pairs")
    ap.add_argument("--outtypes", default="f32,q8_0")
    ap.add_argument("--chunks", type=int, default=64, help="128-token chunks of the WikiText-2 test split")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--work", default=None, help="folder for the GGUF files (default: a temporary one)")
    ap.add_argument("--out", default=None, help="JSON results")
    args = ap.parse_args()
    text = load_text("wikitext2", "test")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(args.work or tmp)
        work.mkdir(parents=True, exist_ok=True)
        text_file = work / "wikitext2-test.txt"
        text_file.write_text(text, encoding="utf-8")
        for name, spec in (m.split("=", 1) for m in args.models):
            model, tok = load_model(spec, dtype="float32", device="cpu")
            add_bos = bool(getattr(tok, "add_bos_token", False)) and tok.bos_token_id is not None
            ref = llmprune_ppl(model, tok, text, args.chunks, add_bos)
            own, _ = perplexity(model, tok, text, seq_len=CTX, max_windows=args.chunks, progress=False)
            for outtype in args.outtypes.split(","):
                done = export_gguf(spec, work / f"{name}-{outtype}.gguf", outtype=outtype)
                cpp = llama_cpp_ppl(done.path, text_file, args.chunks, args.threads)
                gap = cpp / ref - 1
                rows.append(
                    dict(
                        model=name, arch=done.arch, outtype=outtype, llmprune=ref, llama_cpp=cpp, gap=gap, protocol=own
                    )
                )
                print(json.dumps(rows[-1]), flush=True)
    print(
        f"\n| model | GGUF arch | outtype | llmprune PPL | llama-perplexity PPL | gap | llmprune protocol PPL ({CTX}) |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        print(
            f"| {r['model']} | {r['arch']} | {r['outtype']} | {r['llmprune']:.3f} | {r['llama_cpp']:.3f} | "
            f"{r['gap']:+.2%} | {r['protocol']:.3f} |"
        )
    if args.out:
        atomic_write_json(args.out, {"chunks": args.chunks, "ctx": CTX, "rows": rows})


if __name__ == "__main__":
    main()
