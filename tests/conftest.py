"""Shared fixtures: tiny random models built in-process, and the real SmolLM2 (slow, bounded)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
if "LLMPRUNE_DATA_DIR" not in os.environ and SHARED_DATA.is_dir():
    os.environ["LLMPRUNE_DATA_DIR"] = str(SHARED_DATA)

from tests.tiny import save_tiny, tiny_model  # noqa: E402  (after the environment above is set)


@pytest.fixture
def make_tiny():
    return tiny_model


@pytest.fixture
def tiny_dir(tmp_path):
    """Factory: tiny_dir(family="llama", **config) -> path of a saved tiny model folder."""
    counter = iter(range(1000))

    def make(family: str = "llama", **kw):
        path = tmp_path / f"tiny-{family}-{next(counter)}"
        save_tiny(path, family, **kw)
        return path

    return make


@pytest.fixture
def tiny_text_data(tmp_path, monkeypatch):
    """$LLMPRUNE_DATA_DIR with wikitext2 test/valid made of the tiny tokenizer's words."""
    g = torch.Generator().manual_seed(0)
    root = tmp_path / "data"
    (root / "wikitext2").mkdir(parents=True)
    for split in ("test", "valid"):
        ids = torch.randint(2, 128, (4000,), generator=g).tolist()
        lines = [" " + " ".join(f"t{i}" for i in ids[k : k + 40]) + "\n" for k in range(0, 4000, 40)]
        (root / "wikitext2" / f"{split}.txt").write_text("".join(lines))
    monkeypatch.setenv("LLMPRUNE_DATA_DIR", str(root))
    return root


@pytest.fixture(scope="session")
def smollm2():
    """The real SmolLM2-135M (fp32, CPU), converted once into the llmprune cache."""
    from llmprune.models import load_model

    return load_model("smollm2-135m", dtype="float32", device="cpu")


@pytest.fixture(scope="session")
def smollm2_dir(smollm2):
    from llmprune.models.aliases import alias_dir

    return alias_dir("smollm2-135m")
