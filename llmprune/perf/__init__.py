"""Speed and size: parameters, weights on disk, peak memory, prefill latency and decode throughput.

Kept apart from `llmprune.eval` (accuracy): `bench(spec, baseline, BenchConfig(...))` measures a model
against a baseline in the same run; `footprint` measures memory in a fresh process.
"""
