"""The import contract of host/pocketbench (docs/architecture.md): each stage package imports only
the stages below it, and no module imports itself back through others (no cycle, lazy imports
included, since a lazy import is still a dependency).

Read from the source with `ast`, so it checks every import in every function without running any.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "host" / "pocketbench"

# Lowest first. A module may import its own layer and any layer below it, never one above.
LAYERS: list[tuple[str, set[str]]] = [
    ("foundation", {"errors", "names", "paths", "progress", "atomic", "stats", "student_t"}),
    ("models", {"models"}),
    ("compress", {"compress"}),
    ("lower", {"lower"}),
    ("runner", {"runner"}),
    ("devices", {"devices"}),
    ("telemetry", {"telemetry"}),
    ("results", {"results"}),
    ("measure", {"measure"}),
    ("report", {"report"}),
    ("farm", {"farm"}),
    ("tune", {"tune"}),
    ("emulator", {"emulator"}),  # a test double the CLI serves: no device driver may use it
    ("app", {"cli", "crash", "api", "__init__", "__main__"}),
]


def _layer_of(module: str) -> str:
    top = module.split(".")[1] if "." in module else "__init__"
    for name, members in LAYERS:
        if top in members:
            return name
    raise AssertionError(f"{module}: not in any layer of tests/test_import_layers.py — add its package")


def _modules() -> dict[str, Path]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """Every pocketbench module `name` imports, wherever the import statement sits."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            for alias in node.names:  # `from pkg import module` imports the module itself
                out.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base)
    return {m for m in out if m in modules and m != name}


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(name, path, modules) for name, path in modules.items()}


def test_every_module_is_in_a_layer(graph):
    for module in graph:
        _layer_of(module)


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    rank = {name: i for i, (name, _) in enumerate(LAYERS)}
    found = []
    for module, deps in graph.items():
        layer = _layer_of(module)
        for dep in deps:
            target = _layer_of(dep)
            if rank[target] > rank[layer] and module != "pocketbench":  # the package root re-exports the API
                found.append(f"{module} ({layer}) imports {dep} ({target})")
    return sorted(found)


def test_no_stage_imports_a_later_stage(graph):
    upward = upward_imports(graph)
    assert not upward, "imports against the layer order:\n" + "\n".join(upward)


def test_no_import_cycles(graph):
    """Tarjan's strongly connected components: any component of two or more modules is a cycle."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for dep in graph[node]:
            if dep not in index:
                visit(dep)
                low[node] = min(low[node], low[dep])
            elif dep in on_stack:
                low[node] = min(low[node], index[dep])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in graph:
        if node not in index:
            visit(node)
    assert not cycles, "import cycles:\n" + "\n".join(" ↔ ".join(c) for c in cycles)


def test_the_contract_catches_a_lazy_upward_import(tmp_path):
    """The checker itself: an import inside a function of a lower stage is seen and reported."""
    modules = {"pocketbench.compress.x": tmp_path / "x.py", "pocketbench.report.table": tmp_path / "t.py"}
    modules["pocketbench.compress.x"].write_text("def f():\n    from pocketbench.report.table import build_tables\n")
    graph = {"pocketbench.compress.x": _imports("pocketbench.compress.x", modules["pocketbench.compress.x"], modules)}
    assert upward_imports(graph) == ["pocketbench.compress.x (compress) imports pocketbench.report.table (report)"]


def test_no_module_name_appears_twice():
    """One name, one place: `report/table.py` and `tune/table.py` would both be "table" in a
    traceback, a search or a conversation (package markers `__init__`/`__main__` aside)."""
    seen: dict[str, list[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        if path.stem not in {"__init__", "__main__"}:
            seen.setdefault(path.stem, []).append(str(path.relative_to(PACKAGE)))
    assert {stem: paths for stem, paths in seen.items() if len(paths) > 1} == {}
