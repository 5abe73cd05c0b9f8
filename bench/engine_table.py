"""Pruning engines, allocations, compensation targets and calibrations side by side, in one run.

Each variant prunes a fresh copy of the same dense model to the same ratio and is scored on three texts:
WikiText-2 test (the protocol's), C4 documents the calibration never saw (the last 50 of the local
200-document sample; C4 calibration uses the first 150), and Alpaca responses (the last records of the
local file, responses only). Prints one row per variant (perplexities, x dense, seconds) and, with
--json, writes them.

    python bench/engine_table.py --windows 64 \
        --variant engine=taylor \
        --variant engine=sequential \
        --variant engine=sequential,allocation=depth,sequential_calib.samples=256
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import tempfile
import time
from pathlib import Path

import yaml

from llmprune.data import load_text
from llmprune.data.sources import SOURCES, resolve_file
from llmprune.eval.ppl import perplexity
from llmprune.fsutil import atomic_write_json
from llmprune.models import load_model
from llmprune.prune import PruneConfig
from llmprune.prune.pipeline import prune_model

DEFAULT_VARIANTS = [
    "engine=taylor",
    "engine=sequential",  # the defaults: allocation taylor, compensate layer, no bias
    "engine=sequential,bias=true",
    "engine=sequential,compensate=dense",
    "engine=sequential,allocation=fisher",
    "engine=sequential,allocation=error",
    "engine=sequential,allocation=error-std",
    "engine=sequential,allocation=depth",
    "engine=sequential,calib.source=c4,sequential_calib.source=c4",
]


def held_out_texts(folder: Path, *, alpaca_records: int = 400) -> dict[str, str]:
    """Write the calibration / held-out splits of the local C4 sample and Alpaca; return their paths."""
    c4, _ = resolve_file(SOURCES["c4"].files["train"])
    alpaca, _ = resolve_file(SOURCES["alpaca"].files["train"])
    lines = [line for line in c4.read_text(encoding="utf-8").splitlines() if line.strip()]
    (folder / "c4_calib.jsonl").write_text("\n".join(lines[:150]) + "\n")
    (folder / "c4_heldout.jsonl").write_text("\n".join(lines[150:]) + "\n")
    records = json.loads(alpaca.read_text(encoding="utf-8"))[-alpaca_records:]
    (folder / "alpaca_responses.txt").write_text("\n\n".join(r["output"] for r in records))
    return {
        "c4_calib": str(folder / "c4_calib.jsonl"),
        "c4_heldout": str(folder / "c4_heldout.jsonl"),
        "alpaca_responses": str(folder / "alpaca_responses.txt"),
    }


def parse_variant(spec: str, files: dict[str, str]) -> dict:
    """`key=value,...` (values as YAML; `calib.source=c4` means the 150 calibration documents)."""
    out: dict = {}
    for item in filter(None, spec.split(",")):
        key, raw = item.split("=", 1)
        value = yaml.safe_load(raw)
        if value == "c4" and key.endswith("source"):
            value = files["c4_calib"]
        node = out
        *path, last = key.split(".")
        for k in path:
            node = node.setdefault(k, {})
        node[last] = value
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--ratio", type=float, default=0.2)
    ap.add_argument("--windows", type=int, default=64, help="windows of 128 tokens per text")
    ap.add_argument("--variant", action="append", help="key=value,... of PruneConfig (repeatable)")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="engine-table-") as tmp:  # the split texts, removed at the end
        run(args, held_out_texts(Path(tmp)))


def run(args: argparse.Namespace, files: dict[str, str]) -> None:
    texts = {
        "wikitext2": load_text("wikitext2", "test"),
        "c4 held-out": load_text(files["c4_heldout"]),
        "alpaca responses": load_text(files["alpaca_responses"]),
    }
    dense, tok = load_model(args.model, dtype="float32", device="cpu")

    def score(model) -> dict[str, float]:
        return {
            name: perplexity(model, tok, text, seq_len=128, max_windows=args.windows, progress=False)[0]
            for name, text in texts.items()
        }

    base = score(dense)
    rows = [{"variant": "dense", **base, "seconds": 0.0, "removed": 0.0}]
    print(" | ".join(["variant", *texts, "seconds", "removed"]))
    print(" | ".join(["dense", *(f"{v:.2f}" for v in base.values()), "", ""]), flush=True)
    for spec in args.variant or DEFAULT_VARIANTS:
        cfg = PruneConfig(**{"ratio": args.ratio, **parse_variant(spec, files)})
        model = copy.deepcopy(dense)
        t0 = time.perf_counter()
        result = prune_model(model, tok, cfg, progress=False)
        seconds = time.perf_counter() - t0
        ppl = score(model)
        rows.append({"variant": spec, **ppl, "seconds": round(seconds, 1), "removed": result.ratio_removed})
        cells = [f"{ppl[k]:.2f} (x{ppl[k] / base[k]:.2f})" for k in texts]
        print(" | ".join([spec, *cells, f"{seconds:.0f}", f"{result.ratio_removed:.2%}"]), flush=True)
        del model
    if args.json:
        atomic_write_json(args.json, {"model": args.model, "ratio": args.ratio, "windows": args.windows, "rows": rows})
    geo = {r["variant"]: math.exp(sum(math.log(r[k] / base[k]) for k in texts) / len(texts)) for r in rows[1:]}
    best = min(geo, key=geo.get)
    print(f"best by the geometric mean of x dense over the three texts: {best} (x{geo[best]:.3f})")


if __name__ == "__main__":
    main()
