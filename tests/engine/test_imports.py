"""The engine's import graph has no cycle, counting imports inside functions too (they are how cycles hide)."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

SANET = Path(__file__).resolve().parents[2] / "sanet"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SANET.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in SANET.rglob("*.py")}


def imports_of(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """Every sanet module `path` imports, at any depth of the file (module level, functions, classes)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - (node.level - 1)]
                origin = ".".join(base + ([node.module] if node.module else []))
            else:
                origin = node.module or ""
            # `from X import y`: the module X.y when y is one (X is then only its parent package, which every
            # submodule import initialises first: not a dependency on X's contents), else X itself
            targets = [f"{origin}.{a.name}" if f"{origin}.{a.name}" in known else origin for a in node.names]
        else:
            continue
        for t in targets:
            while t and t not in known:       # `import sanet.models.sanet` when only a parent is ours, etc.
                t = t.rpartition(".")[0]
            if t and t != name:
                out.add(t)
    return out


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(n: str) -> list[str] | None:
        state[n] = 1
        stack.append(n)
        for m in sorted(graph.get(n, ())):
            if state.get(m) == 1:
                return stack[stack.index(m):] + [m]
            if m not in state and (found := visit(m)):
                return found
        stack.pop()
        state[n] = 2
        return None

    for n in sorted(graph):
        if n not in state and (found := visit(n)):
            return found
    return None


def import_graph() -> dict[str, set[str]]:
    known = modules()
    return {name: imports_of(name, path, known) for name, path in known.items()}


def test_sanet_has_no_import_cycle():
    graph = import_graph()
    assert {"sanet.runtime.stylizer", "sanet.models.adaattn", "sanet.functional"} <= set(graph)
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " → ".join(cycle)


def test_models_do_not_import_the_runtime():
    """Models are the papers: data + pure functions; the machinery (tiles, cache, planner) imports them, not back."""
    graph = import_graph()
    for name, deps in graph.items():
        if name.startswith("sanet.models") or name in ("sanet.functional", "sanet.vgg"):
            assert not [d for d in deps if d.startswith("sanet.runtime")], name


@pytest.mark.parametrize("graph,cycle", [
    ({"a": {"b"}, "b": {"c"}, "c": {"a"}}, ["a", "b", "c", "a"]),
    ({"a": {"b"}, "b": set(), "c": {"b"}}, None),
])
def test_the_cycle_finder_finds_cycles(graph, cycle):
    assert find_cycle(graph) == cycle


def test_function_level_imports_count(tmp_path):
    """A lazy import inside a function is an edge like any other (the old engine hid its loop that way)."""
    pkg = tmp_path / "sanet"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from . import b\n")
    (pkg / "b.py").write_text("def f():\n    from .a import x\n    return x\n")
    known = {"sanet": pkg / "__init__.py", "sanet.a": pkg / "a.py", "sanet.b": pkg / "b.py"}
    graph = {n: imports_of(n, p, known) for n, p in known.items()}
    assert find_cycle(graph) == ["sanet.a", "sanet.b", "sanet.a"]
