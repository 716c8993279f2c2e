"""The bridge's modules import one another in one direction only (DESIGN.md section 2: web ->
orders -> kotak/journal -> domain).

Every module under ``bridge/`` is read with :mod:`ast`, nothing is imported, and each import
of a bridge module is an edge: at module level, under ``if TYPE_CHECKING:`` and inside a
function alike, since a cycle that only the type checker or a late call walks still makes
each module need the other. ``from bridge.x import y`` is an edge to ``bridge.x.y`` when that
is a module, else to ``bridge.x``; a package's ``__init__.py`` is the package's module, so
its re-exports are its edges.
"""

from __future__ import annotations

import ast
import itertools
from collections import deque
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "bridge"

#: the web layer: the front doors, the dashboard, the REST API and the app that joins them
WEB = ("bridge.webhooks", "bridge.dashboard", "bridge.api", "bridge.app", "bridge.health",
       "bridge.metrics", "bridge.web_context")
#: what builds on the orders: the web layer, and the wiring that assembles every part
ABOVE_ORDERS = ("bridge.orders", *WEB, "bridge.wiring")
#: (modules, what they must not import, why)
LAYERS = (
    ("bridge.domain", (*ABOVE_ORDERS, "bridge.journal", "bridge.kotak"),
     "domain types are the bottom layer"),
    ("bridge.journal", ABOVE_ORDERS, "the journal is below the orders"),
    ("bridge.kotak", (*ABOVE_ORDERS, "bridge.journal"),
     "the Kotak connector is below the orders and never imports the journal"),
    ("bridge.orders", (*WEB, "bridge.wiring"), "the orders are below the web layer"),
)

Graph = Mapping[str, Mapping[str, int]]  # module -> imported module -> line of the import


def _modules() -> dict[str, Path]:
    modules = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join(parts)] = path
    return modules


MODULES = _modules()


def _within(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def imports(module: str, source: str, *, package: bool = False) -> Iterator[tuple[str, int]]:
    """Every module ``source`` (the text of ``module``; ``package``: its ``__init__.py``)
    imports, wherever the import stands, with its line."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = module.split(".") if package else module.split(".")[:-1]
                parts = parts[:len(parts) - node.level + 1]
                base = ".".join([*parts, base] if base else parts)
            for alias in node.names:
                name = f"{base}.{alias.name}"
                yield (name if name in MODULES else base), node.lineno


def _bridge_module(name: str) -> str | None:
    """The bridge module an import of ``name`` loads (the nearest that exists), or None."""
    if not _within(name, "bridge"):
        return None
    while name not in MODULES and "." in name:
        name = name.rsplit(".", 1)[0]
    return name


def edges(module: str, source: str, *, package: bool = False) -> dict[str, int]:
    found: dict[str, int] = {}
    for name, line in imports(module, source, package=package):
        target = _bridge_module(name)
        if target is not None and target != module:
            found.setdefault(target, line)
    return found


def build_graph() -> dict[str, dict[str, int]]:
    return {module: edges(module, path.read_text(encoding="utf-8"),
                          package=path.name == "__init__.py")
            for module, path in MODULES.items()}


def _components(graph: Graph) -> list[list[str]]:
    """The groups of two or more modules that each reach the others (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, {}):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def cycles(graph: Graph) -> list[list[str]]:
    """One shortest cycle through each group of modules that import one another, as a path
    that starts and ends with the same module."""
    paths = []
    for group in _components(graph):
        members, start = set(group), group[0]
        came_from: dict[str, str] = {}
        queue = deque([start])
        while start not in came_from:
            node = queue.popleft()
            for target in sorted(graph[node]):
                if target in members and target not in came_from:
                    came_from[target] = node
                    queue.append(target)
        path = [start]
        while len(path) == 1 or path[-1] != start:
            path.append(came_from[path[-1]])
        paths.append(path[::-1])
    return paths


def describe(path: list[str], graph: Graph) -> str:
    """``a -> b (a line 3) -> a (b line 9)``: each hop with the line of its import."""
    hops = [path[0]] + [f"{target} ({source} line {graph[source][target]})"
                        for source, target in itertools.pairwise(path)]
    return " -> ".join(hops)


def test_the_bridge_modules_import_one_another_without_a_cycle() -> None:
    graph = build_graph()
    found = cycles(graph)
    assert not found, "import cycles among bridge modules:\n" + "\n".join(
        describe(path, graph) for path in found)


@pytest.mark.parametrize(("layer", "forbidden", "why"), LAYERS, ids=[row[0] for row in LAYERS])
def test_a_layer_imports_nothing_above_it(layer: str, forbidden: tuple[str, ...],
                                          why: str) -> None:
    graph = build_graph()
    wrong = [f"{module} imports {target} (line {line})"
             for module, targets in sorted(graph.items()) if _within(module, layer)
             for target, line in sorted(targets.items())
             if any(_within(target, above) for above in forbidden)]
    assert not wrong, f"{why}:\n" + "\n".join(wrong)


def test_the_kotak_connector_never_imports_flask() -> None:
    wrong = [f"{module} imports {name} (line {line})"
             for module, path in MODULES.items() if _within(module, "bridge.kotak")
             for name, line in imports(module, path.read_text(encoding="utf-8"),
                                       package=path.name == "__init__.py")
             if _within(name, "flask")]
    assert not wrong, "bridge/kotak/ must not import Flask:\n" + "\n".join(wrong)


def test_every_kind_of_import_is_an_edge() -> None:
    source = "\n".join([
        "from typing import TYPE_CHECKING",
        "import bridge.orders.desk",
        "from bridge import journal",
        "from bridge.kotak.errors import KotakError",
        "from bridge.kotak.sandbox import Sandbox",
        "if TYPE_CHECKING:",
        "    from bridge.wiring import Services",
        "def late():",
        "    from .sandbox import broker",
        "    from . import http",
    ])
    assert edges("bridge.kotak.client", source) == {
        "bridge.orders.desk": 2, "bridge.journal": 3, "bridge.kotak.errors": 4,
        "bridge.kotak.sandbox": 5, "bridge.wiring": 7, "bridge.kotak.sandbox.broker": 9,
        "bridge.kotak.http": 10}
    assert edges("bridge.kotak", "from .client import KotakClient", package=True) == {
        "bridge.kotak.client": 1}


def test_a_cycle_is_reported_with_its_path() -> None:
    graph = {"bridge.a": {"bridge.b": 3}, "bridge.b": {"bridge.c": 5},
             "bridge.c": {"bridge.a": 7, "bridge.d": 8}, "bridge.d": {}}
    assert [describe(path, graph) for path in cycles(graph)] == [
        "bridge.a -> bridge.b (bridge.a line 3) -> bridge.c (bridge.b line 5) -> "
        "bridge.a (bridge.c line 7)"]
    assert cycles({"bridge.a": {"bridge.b": 1}, "bridge.b": {}}) == []
