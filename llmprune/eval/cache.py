"""A resumable zero-shot run: per-example log-likelihoods appended to a JSON Lines file.

A full-set run of the four standard tasks is hours on a CPU. With `llmprune eval --cache FILE`, every
scored chunk of examples is appended (and flushed) as it finishes; run the same command again after an
interruption and only the missing examples are scored.

    {"format": "llmprune-zeroshot-cache", "version": 1, "model": "<fingerprint>"}    first line
    {"task": "piqa", "key": "<hash of the example's requests>", "lls": [-12.3, -15.1]}

`model` fingerprints the weights and the tokenizer (`model_fingerprint`), so a cache is never applied to
another model. Keys hash the (context, continuation) strings, so an edited task file re-scores what
changed. One process writes a cache at a time (a lock on `FILE.lock`). Only a truncated last line (a run killed mid-write) is skipped when reading; any other bad
line is an error naming it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path

from llmprune.errors import LlmpruneError
from llmprune.eval.tasks import Example

FORMAT = "llmprune-zeroshot-cache"
VERSION = 1


def model_fingerprint(model, tokenizer) -> str:
    """Hash of every named tensor (name, dtype, shape, bytes) and of the tokenizer's vocabulary."""
    import torch

    h = hashlib.blake2b(digest_size=16)
    with torch.no_grad():
        for name, t in sorted(model.state_dict().items()):
            h.update(f"{name}|{t.dtype}|{tuple(t.shape)}".encode())
            h.update(t.detach().contiguous().cpu().view(-1).view(torch.uint8).numpy().tobytes())
    vocab = tokenizer.get_vocab()
    h.update(json.dumps(sorted(vocab.items()), ensure_ascii=False).encode())
    return h.hexdigest()


def example_key(example: Example) -> str:
    return hashlib.blake2b(json.dumps(example.requests, ensure_ascii=False).encode(), digest_size=16).hexdigest()


def check_cache_file(path: Path) -> None:
    """Fail fast (before any model is loaded) when `path` exists but is not a zero-shot cache."""
    path = Path(path)
    if path.is_dir():
        raise LlmpruneError(f"--cache {path} is a folder; pass a file path (e.g. {path / 'zeroshot.jsonl'})")
    if not path.exists() or path.stat().st_size == 0:
        from llmprune.fsutil import check_writable_parent

        check_writable_parent(path)
        return
    with path.open(encoding="utf-8", errors="replace") as f:
        first = f.readline()
    try:
        ok = json.loads(first).get("format") == FORMAT
    except (json.JSONDecodeError, AttributeError):
        ok = False
    if not ok:
        raise LlmpruneError(f"--cache {path} is not an llmprune zero-shot cache; pass a new --cache path")


def _lock(path: Path):
    """Hold an exclusive lock on `path.lock` while this process uses the cache (one writer per file)."""
    try:
        import fcntl
    except ImportError:  # no POSIX locks (Windows): one run per cache file is up to the user
        return None
    handle = open(path.with_name(path.name + ".lock"), "w")  # noqa: SIM115 - held for the cache's lifetime
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as e:
        handle.close()
        raise LlmpruneError(
            f"--cache {path} is in use by another llmprune eval; wait for it, or pass another --cache path"
        ) from e
    return handle


class ResultCache:
    """Read what `path` holds for `fingerprint`, append new results to it."""

    def __init__(self, path: Path, fingerprint: str) -> None:
        self.path = Path(path)
        self.fingerprint = fingerprint
        self.entries: dict[tuple[str, str], list[float]] = {}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = _lock(self.path)
        if self.path.exists() and self.path.stat().st_size > 0:
            self._read()
        else:
            self._append({"format": FORMAT, "version": VERSION, "model": fingerprint})

    def _read(self) -> None:
        lines = self.path.read_text(encoding="utf-8").splitlines()
        for n, line in enumerate(lines, 1):
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                if n == len(lines) and n > 1:  # a run killed mid-write: drop the partial line
                    self._truncate_last_line()
                    return
                raise LlmpruneError(
                    f"--cache {self.path}: line {n} is not JSON ({e.msg}); pass a new --cache path"
                ) from e
            if n == 1:
                if not isinstance(row, dict) or row.get("format") != FORMAT:
                    raise LlmpruneError(
                        f"--cache {self.path} is not an llmprune zero-shot cache; pass a new --cache path"
                    )
                if row.get("model") != self.fingerprint:
                    raise LlmpruneError(
                        f"--cache {self.path} holds results of another model or tokenizer (fingerprint "
                        f"{row.get('model')}, this model {self.fingerprint}); pass a new --cache path"
                    )
                continue
            try:
                self.entries[(str(row["task"]), str(row["key"]))] = [float(x) for x in row["lls"]]
            except (KeyError, TypeError, ValueError) as e:
                raise LlmpruneError(f"--cache {self.path}: line {n} is not a cached result ({e!r})") from e

    def _truncate_last_line(self) -> None:
        data = self.path.read_bytes()
        cut = data.rstrip(b"\n").rfind(b"\n")
        self.path.write_bytes(data[: cut + 1])

    def _append(self, row: dict) -> None:
        with self.path.open("a", encoding="utf-8") as f:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
            f.flush()

    def get(self, task: str, example: Example) -> list[float] | None:
        lls = self.entries.get((task, example_key(example)))
        return lls if lls is not None and len(lls) == len(example.requests) else None

    def put(self, task: str, examples: Sequence[Example], lls: Sequence[Sequence[float]]) -> None:
        with self.path.open("a", encoding="utf-8") as f:
            for ex, ll in zip(examples, lls, strict=True):
                key = example_key(ex)
                self.entries[(task, key)] = list(ll)
                f.write(json.dumps({"task": task, "key": key, "lls": list(ll)}) + "\n")
            f.flush()
