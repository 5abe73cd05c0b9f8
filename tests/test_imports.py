"""The package's seams: every module imports on its own, no import cycle between llmprune modules (function-
level imports included), and configs and recipes load without torch."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "llmprune"


def _modules() -> dict[str, Path]:
    out = {}
    for f in sorted(PACKAGE.rglob("*.py")):
        parts = list(f.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = f
    return out


MODULES = _modules()


def _targets(module: str, node: ast.Import | ast.ImportFrom) -> list[str]:
    """The llmprune modules an import statement loads (`from pkg import sub` counts as pkg.sub)."""
    if isinstance(node, ast.Import):
        names = [a.name for a in node.names]
    else:
        base = node.module or ""
        if node.level:  # relative import
            pkg = module.split(".") if MODULES[module].name == "__init__.py" else module.split(".")[:-1]
            pkg = pkg[: len(pkg) - (node.level - 1)]
            base = ".".join(pkg + ([node.module] if node.module else []))
        names = [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names]
    out = []
    for name in names:
        while name and name not in MODULES:
            name = name.rpartition(".")[0]
        if name.startswith("llmprune") and name != module:
            out.append(name)
    return out


def import_graph() -> dict[str, set[str]]:
    """module -> llmprune modules it imports anywhere (module level, inside functions, under TYPE_CHECKING)."""
    graph = {}
    for module, path in MODULES.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        nodes = [n for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom))]
        graph[module] = {t for n in nodes for t in _targets(module, n)}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out = []
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            v, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[v] = min(low[v], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                if len(comp) > 1:
                    out.append(sorted(comp))
    return out


def test_no_import_cycles():
    assert cycles(import_graph()) == []


def test_the_cycle_finder_finds_cycles():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_every_module_imports_in_a_fresh_interpreter():
    code = "import importlib, sys\nfor name in sys.argv[1:]:\n    importlib.import_module(name)\n"
    proc = subprocess.run([sys.executable, "-c", code, *MODULES], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-2000:]


@pytest.mark.parametrize(
    "statement",
    [
        "from llmprune.recipes import load_recipe; load_recipe('recipes/smollm2_20pct_lora.yaml')",
        "from llmprune.prune import PruneConfig; PruneConfig(importance='element2', aggregate='max')",
        "import llmprune.cli.app",  # `llmprune --help` answers without loading torch
    ],
)
def test_configs_and_recipes_load_without_torch(statement):
    code = f"import sys\n{statement}\nassert 'torch' not in sys.modules, 'torch was imported'\n"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_model_type_is_read_only_by_the_registry_and_config_io():
    """A family's name is looked up in `llmprune.arch` only. Plans and manifests store it, and the model
    loaders read it from config.json, GGUF headers and alias metadata (config I/O) to hand it to the
    registry; nothing outside `arch` branches on it."""
    allowed = {
        "llmprune/prune/plan.py",
        "llmprune/runfolder.py",
        "llmprune/models/load.py",
        "llmprune/models/aliases.py",
        "llmprune/models/gguf_header.py",
    }
    outside = [f for f in PACKAGE.rglob("*.py") if f.parent.name != "arch"]
    found = {str(f.relative_to(ROOT)) for f in outside if "model_type" in f.read_text(encoding="utf-8")}
    assert found <= allowed
    branching = re.compile(r"model_type\s*(==|!=|\bin\b|\bnot in\b)\s*[\"'(\[{]")
    offenders = [str(f.relative_to(ROOT)) for f in outside if branching.search(f.read_text(encoding="utf-8"))]
    assert offenders == [], f"family-specific branches outside llmprune.arch: {offenders}"
