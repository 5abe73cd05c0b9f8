"""Achieved sparsity, read back from the weights: per Linear, per decoder layer, and overall."""

from __future__ import annotations

from torch import nn

from llmprune.sparsify.targets import layer_targets


def sparsity_report(model: nn.Module) -> dict:
    """{"modules": {name: sparsity}, "layers": [per decoder layer], "overall": fraction of zeros over all
    selected weights, "overall_model": fraction of zeros over every parameter, "zeros", "numel"}."""
    modules: dict[str, float] = {}
    layers = []
    zeros = numel = 0
    for i, (prefix, linears) in enumerate(layer_targets(model)):
        lz = ln = 0
        row: dict = {"layer": i}
        for short, lin in linears.items():
            z, n = int((lin.weight == 0).sum()), lin.weight.numel()
            modules[f"{prefix}.{short}"] = z / n
            row[short.split(".")[-1]] = z / n
            lz, ln = lz + z, ln + n
        row["total"] = lz / ln
        layers.append(row)
        zeros, numel = zeros + lz, numel + ln
    all_zeros = sum(int((p == 0).sum()) for p in model.parameters())
    all_numel = sum(p.numel() for p in model.parameters())
    return {
        "overall": zeros / numel,
        "zeros": zeros,
        "numel": numel,
        "overall_model": all_zeros / all_numel,
        "layers": layers,
        "modules": modules,
    }
