"""The GGUF file a model came from, whose tokenizer metadata an export copies: MODEL itself when it is a
`.gguf` file, an alias's cached GGUF (also for its converted folder), or, for a pruned folder, that of
the base model named in `llmprune.json` (followed through several prunes). Never downloads.
"""

from __future__ import annotations

from pathlib import Path

from llmprune.errors import LlmpruneError


def source_gguf(spec: str, _depth: int = 0) -> Path | None:
    """The GGUF file MODEL came from, when one is at hand (never downloads); None otherwise."""
    from llmprune.models.aliases import ALIASES, alias_dir
    from llmprune.models.cache import cache_dir
    from llmprune.models.load import resolve_model_source
    from llmprune.runfolder import RunFolder

    if not spec or _depth > 4:
        return None
    try:
        kind, loc = resolve_model_source(spec)
    except LlmpruneError:  # a base model named in a manifest that is gone
        return None
    if kind == "gguf":
        return Path(loc)
    if kind == "llmprune":
        return source_gguf(RunFolder(loc).read_manifest().base_model, _depth + 1)
    name = loc if kind == "alias" else next((a for a in ALIASES if alias_dir(a).resolve() == Path(loc).resolve()), None)
    if name is None:
        return None
    path = cache_dir() / "gguf" / ALIASES[name].filename
    return path if path.is_file() else None
