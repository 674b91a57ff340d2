"""The package's import graph: no cycle, and the NumPy side never reaches ``relusv.torch``.

The graph is read from the source (``ast``), every ``import`` statement at any
depth (a function-level import still ties the modules together): ``from X
import name`` is an edge to ``X.name`` where that is a module of the package,
else to ``X``. The NumPy side (group selection, the comparison statistics, the
layer table, the report's findings) must not reach ``relusv.torch`` by any
path, and no module may reach itself.
"""
from __future__ import annotations

import ast
from pathlib import Path
from typing import Dict, List, Set

import relusv

ROOT = Path(relusv.__file__).parent
NUMPY_SIDE = ("relusv.analysis", "relusv.analysis.compare", "relusv.analysis.directions", "relusv.layer_table",
              "relusv.groups", "relusv.report.findings")


def _modules() -> Dict[str, Path]:
    out = {}
    for path in ROOT.rglob("*.py"):
        parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _resolve(module: str, is_package: bool, level: int, target: str) -> str:
    if level == 0:
        return target
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[:len(base) - (level - 1)]
    return ".".join(base + ([target] if target else []))


def import_graph() -> Dict[str, Set[str]]:
    modules = _modules()
    graph: Dict[str, Set[str]] = {m: set() for m in modules}
    for name, path in modules.items():
        is_package = path.name == "__init__.py"
        for node in ast.walk(ast.parse(path.read_text())):
            targets: List[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = _resolve(name, is_package, node.level, node.module or "")
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
            for t in targets:
                while t and t not in modules and "." in t:   # a submodule's attribute: the module itself
                    t = t.rsplit(".", 1)[0]
                if t in modules and t != name:
                    graph[name].add(t)
    return graph


def _reachable(graph: Dict[str, Set[str]], start: str) -> Set[str]:
    seen, stack = set(), [start]
    while stack:
        for nxt in graph[stack.pop()]:
            if nxt not in seen:
                seen.add(nxt)
                stack.append(nxt)
    return seen


def _cycle(graph: Dict[str, Set[str]]) -> List[str]:
    """One import cycle (a list of modules), or [] when there is none."""
    state: Dict[str, int] = {}
    path: List[str] = []

    def visit(m: str) -> List[str]:
        state[m] = 1
        path.append(m)
        for nxt in sorted(graph[m]):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        state[m] = 2
        path.pop()
        return []

    for m in sorted(graph):
        if m not in state:
            found = visit(m)
            if found:
                return found
    return []


def test_the_graph_is_read():
    graph = import_graph()
    assert "relusv.analysis.compare" in graph["relusv.layer_table"]
    assert "relusv.torch.discovery" in graph["relusv.torch.analysis"]


def test_no_import_cycle():
    assert _cycle(import_graph()) == []


def test_a_cycle_is_found():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]


def test_the_numpy_side_never_reaches_relusv_torch():
    graph = import_graph()
    for start in NUMPY_SIDE:
        reached = _reachable(graph, start)
        assert not any(m == "relusv.torch" or m.startswith("relusv.torch.") for m in reached), (start, sorted(reached))
