"""The shape of the package (DEVELOPERS.md): small modules, no import cycles, no private names
imported across modules, and the families — backends, executors, output formats — each
extended by one module and one registry line."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "doerunner"
MAX_LINES = 450  # "about 400": a module readable in one sitting


def _modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def _imports(path: Path) -> list[tuple[str, list[str], int]]:
    """(module, names, line) of every import in the file, wherever it is (function bodies
    and ``if TYPE_CHECKING`` blocks included)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.module, [a.name for a in node.names], node.lineno))
        elif isinstance(node, ast.Import):
            found += [(a.name, [], node.lineno) for a in node.names]
    return found


def test_no_module_is_over_the_size_limit() -> None:
    sizes = {name: len(p.read_text(encoding="utf-8").splitlines())
             for name, p in _modules().items()}
    assert {n: s for n, s in sizes.items() if s > MAX_LINES} == {}


def test_no_private_name_is_imported_from_another_module() -> None:
    bad = []
    for name, path in _modules().items():
        for module, names, line in _imports(path):
            if module.startswith("doerunner") and module != name:
                bad += [f"{name}:{line} {module}.{n}" for n in names
                        if n.startswith("_") and not n.startswith("__")]
    assert bad == []


def test_no_import_cycles() -> None:
    modules = _modules()
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        deps = set()
        for module, names, _ in _imports(path):
            if not module.startswith("doerunner"):
                continue
            # `from doerunner.x import y` names module doerunner.x.y when that is a module
            targets = [f"{module}.{n}" for n in names if f"{module}.{n}" in modules]
            deps.update(targets or [module])
        graph[name] = {d for d in deps if d in modules and d != name
                       and not name.startswith(d + ".")}  # a module's own package
    cycles = []
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(n: str) -> None:
        state[n] = 1
        stack.append(n)
        for d in sorted(graph[n]):
            if state.get(d) == 1:
                cycles.append([*stack[stack.index(d):], d])
            elif d not in state:
                visit(d)
        stack.pop()
        state[n] = 2

    for n in sorted(graph):
        if n not in state:
            visit(n)
    assert cycles == []
