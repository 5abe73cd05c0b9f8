"""Which folders are llmprune's own: the marker every command writes into the folder it makes.

`.llmprune-output.json` holds a format, a version and the kind of output (`run`, `pruned`, `report`,
`sparse`, `recovery`, `cache`, `model`: a stand-in written by bench/make_shape.py). A folder is replaced or
written into only when it is empty or carries this marker with a kind the command may replace; never because it holds a file with a common name
(`report.md`, `config.json`, `checkpoint/`). Pruned folders written before the marker existed are
recognised by their manifest (`llmprune.json` with llmprune's format) and count as `pruned`.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from llmprune.errors import LlmpruneError
from llmprune.version import __version__

MARKER = ".llmprune-output.json"
FORMAT = "llmprune-output"
VERSION = 1
Kind = Literal["run", "pruned", "report", "sparse", "recovery", "cache", "model"]
RUN_KINDS: tuple[Kind, ...] = ("run", "pruned")  # `prune`, `run` and `merge` may replace each other's folders


class Marker(BaseModel):
    model_config = ConfigDict(extra="allow")
    format: Literal["llmprune-output"] = FORMAT
    version: int = Field(VERSION, ge=1)
    kind: Kind
    llmprune_version: str = __version__


def write_marker(folder: Path, kind: Kind) -> None:
    """Mark `folder` (being assembled, or made by llmprune) as an output of `kind`."""
    (Path(folder) / MARKER).write_text(Marker(kind=kind).model_dump_json(indent=1) + "\n", encoding="utf-8")


def _legacy_manifest(folder: Path) -> bool:
    try:
        data = json.loads((folder / "llmprune.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and data.get("format") == "llmprune-pruned"


def owner_kind(folder: str | Path) -> str | None:
    """The kind of llmprune output `folder` is, or None when it is not one (or the marker is damaged)."""
    folder = Path(folder)
    try:
        return Marker.model_validate_json((folder / MARKER).read_text(encoding="utf-8")).kind
    except FileNotFoundError:
        return "pruned" if _legacy_manifest(folder) else None
    except (OSError, ValueError, ValidationError):
        return None


def check_replaceable(path: str | Path, replaces: Collection[str] | Literal["any"]) -> None:
    """An existing folder may be replaced only when it is empty or an llmprune output of a kind in `replaces`
    ("any": llmprune's own cache folders). A folder holding the current working directory never is."""
    path = Path(path).expanduser().resolve()
    if not path.is_dir() or not any(path.iterdir()):
        return
    cwd = Path.cwd().resolve()
    if cwd == path or path in cwd.parents:
        raise LlmpruneError(f"{path} holds the current folder; choose a new folder for the output")
    if replaces == "any":
        return
    kind = owner_kind(path)
    if kind in replaces:
        return
    what = (
        f"is an llmprune {kind} folder, not a {' or '.join(replaces)} output"
        if kind
        else f"is not an llmprune output (it has no {MARKER})"
    )
    raise LlmpruneError(f"{path} exists and {what}; it is left as is: remove it yourself or choose another --out")
