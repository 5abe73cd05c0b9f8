"""A resumable zero-shot run: per-example log-likelihoods appended to a JSON Lines file.

A full-set run of the four standard tasks is hours on a CPU. With `llmprune eval --cache FILE`, every
scored chunk of examples is appended (and flushed) as it finishes; run the same command again after an
interruption and only the missing examples are scored.

    {"format": "llmprune-zeroshot-cache", "version": 2, "model": "<fingerprint>"}    first line
    {"task": "piqa", "key": "<hash of the example's requests>", "lls": [-12.3, -15.1]}

`model` fingerprints what decides the numbers (`model_fingerprint`: weights, config, tokenizer, window),
so a cache is never applied to another model. Keys hash the (context, continuation) strings, so an
edited task file re-scores what changed. One process writes a cache at a time (a lock on `FILE.lock`).
A last line without its newline (a run killed mid-write) is dropped, or kept when it is whole; any
other bad line is an error naming it.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path

from llmprune.errors import LlmpruneError
from llmprune.eval.tasks import Example

FORMAT = "llmprune-zeroshot-cache"
VERSION = 2  # 2: the fingerprint covers config, tokenizer and window; ASCII-escaped keys

# config entries that do not change a forward pass (where it was loaded from, which library wrote it)
_CONFIG_NOISE = ("_name_or_path", "transformers_version", "_attn_implementation_autoset", "_commit_hash")


def _config_text(model) -> str:
    config = getattr(model, "config", None)
    if config is None:
        return ""
    d = {k: v for k, v in config.to_dict().items() if k not in _CONFIG_NOISE}
    return json.dumps(d, sort_keys=True, default=str)


def _tokenizer_text(tokenizer) -> str:
    """Everything that decides token ids: the fast tokenizer's whole definition, or the vocabulary."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    rules = backend.to_str() if backend is not None else json.dumps(sorted(tokenizer.get_vocab().items()))
    special = {k: str(v) for k, v in sorted(tokenizer.special_tokens_map.items())}
    flags = {k: getattr(tokenizer, k, None) for k in ("add_bos_token", "add_eos_token")}
    return json.dumps([type(tokenizer).__name__, rules, special, flags], ensure_ascii=False, default=str)


def model_fingerprint(model, tokenizer, window: int | None = None) -> str:
    """Hash of what decides a log-likelihood: every named tensor (name, dtype, shape, bytes), the model
    config, the tokenizer (its rules, special tokens, BOS/EOS flags) and lm-eval's window (`window`)."""
    import torch

    h = hashlib.blake2b(digest_size=16)
    with torch.no_grad():
        for name, t in sorted(model.state_dict().items()):
            h.update(f"{name}|{t.dtype}|{tuple(t.shape)}".encode())
            h.update(t.detach().contiguous().cpu().view(-1).view(torch.uint8).numpy().tobytes())
    h.update(b"|config|" + _config_text(model).encode())
    h.update(b"|tokenizer|" + _tokenizer_text(tokenizer).encode("utf-8", errors="surrogatepass"))
    h.update(f"|window|{window}".encode())
    return h.hexdigest()


def example_key(example: Example) -> str:
    return hashlib.blake2b(json.dumps(example.requests).encode(), digest_size=16).hexdigest()


def _not_a_cache(path: Path) -> LlmpruneError:
    return LlmpruneError(f"--cache {path} is not an llmprune zero-shot cache; pass a new --cache path")


def check_cache_file(path: Path) -> None:
    """Fail fast (before any model is loaded) when `path` exists but is not a zero-shot cache this
    llmprune can extend."""
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
        header = json.loads(first)
    except json.JSONDecodeError:
        header = None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise _not_a_cache(path)
    if header.get("version") != VERSION:
        raise LlmpruneError(
            f"--cache {path} is in cache format version {header.get('version')}; this llmprune reads "
            f"version {VERSION}. Pass a new --cache path"
        )
    if not os.access(path, os.W_OK):
        raise LlmpruneError(f"--cache {path} is not writable; fix its permissions or pass another --cache path")


def _lock(path: Path):
    """Hold an exclusive lock on `path.lock` while this process uses the cache (one writer per file)."""
    try:
        import fcntl
    except ImportError:  # no POSIX locks (Windows): one run per cache file is up to the user
        return None
    lock_path = path.with_name(path.name + ".lock")
    try:
        handle = open(lock_path, "w")  # noqa: SIM115 - held for the cache's lifetime
    except OSError as e:
        raise LlmpruneError(
            f"--cache {path}: cannot create {lock_path} ({e.strerror}); pass a --cache path in a writable folder"
        ) from e
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as e:
        handle.close()
        if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            raise LlmpruneError(
                f"--cache {path} is in use by another llmprune eval; wait for it, or pass another --cache path"
            ) from e
        raise LlmpruneError(
            f"--cache {path}: cannot lock {lock_path} ({e.strerror}); this filesystem may not support locks "
            f"(some network mounts): pass a --cache path on a local disk"
        ) from e
    return handle


def _whole_json(line: bytes) -> bool:
    try:
        json.loads(line.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        return False
    return True


class ResultCache:
    """Read what `path` holds for `fingerprint`, append new results to it."""

    def __init__(self, path: Path, fingerprint: str) -> None:
        self.path = Path(path)
        self.fingerprint = fingerprint
        self.entries: dict[tuple[str, str], list[float]] = {}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        check_cache_file(self.path)
        self._lock = _lock(self.path)
        try:
            if self.path.exists() and self.path.stat().st_size > 0:
                self._read()
            else:
                self._append({"format": FORMAT, "version": VERSION, "model": fingerprint})
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        """Release the lock (another run may then use the file)."""
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    def __enter__(self) -> ResultCache:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _mend_last_line(self, data: bytes) -> bytes:
        """A file not ending in a newline was cut mid-write: drop a partial last line, end a whole one."""
        if data.endswith(b"\n"):
            return data
        head, newline, last = data.rpartition(b"\n")
        if newline and not _whole_json(last):
            os.truncate(self.path, len(head) + 1)  # in place: a kill now cannot lose the earlier lines
            return head + newline
        with self.path.open("ab") as f:
            f.write(b"\n")
        return data + b"\n"

    def _read(self) -> None:
        data = self._mend_last_line(self.path.read_bytes())
        try:
            lines = data.decode("utf-8").split("\n")[:-1]
        except UnicodeDecodeError as e:
            raise LlmpruneError(f"--cache {self.path} is not UTF-8 text ({e}); pass a new --cache path") from e
        for n, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise LlmpruneError(
                    f"--cache {self.path}: line {n} is not JSON ({e.msg}); pass a new --cache path"
                ) from e
            if n == 1:  # its format and version: check_cache_file
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
