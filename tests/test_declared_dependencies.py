"""Every third-party module pocketbench imports is a requirement its installed distribution declares.

An import that works only because something else happened to install the module (torchao came
with executorch, PyYAML with torch's extras) breaks the day that other package stops bringing it.
The imports are read from the source (lazy ones inside functions included); the requirements from
the installed metadata, the same list pip resolves from `pyproject.toml`.
"""

from __future__ import annotations

import ast
import re
import sys
from importlib import metadata
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
OWN = {"pocketbench", "pocketbench_models"}
# Modules the package imports that belong to an extra, not to every install, and why.
EXTRA_ONLY = {
    "pytest": ("dev", "emulator/fixtures.py is a pytest plugin: it is loaded only by pytest"),
    **{
        module: ("hf", "Hugging Face checkpoints (`--model hf:`) load only with the [hf] extra")
        for module in ("transformers", "tokenizers", "PIL")
    },
}


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _imports(roots: list[Path], base: Path = REPO) -> dict[str, set[str]]:
    """Top-level module name → the files importing it (absolute imports anywhere in a file)."""
    found: dict[str, set[str]] = {}
    for root in roots:
        for path in sorted(root.rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                else:
                    continue
                for name in names:
                    found.setdefault(name.split(".")[0], set()).add(str(path.relative_to(base)))
    return found


def _declared() -> dict[str, set[str]]:
    """Requirement name (normalised) → the extras declaring it ("" for the base install)."""
    declared: dict[str, set[str]] = {}
    for requirement in metadata.requires("pocketbench") or []:
        name = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", requirement)
        assert name is not None, requirement
        extra = re.search(r"""extra\s*==\s*["']([^"']+)["']""", requirement)
        declared.setdefault(_normal(name.group()), set()).add(extra.group(1) if extra else "")
    return declared


def _third_party(imports: dict[str, set[str]], local: set[str]) -> dict[str, set[str]]:
    return {
        name: files
        for name, files in imports.items()
        if name not in sys.stdlib_module_names and name not in OWN and name not in local
    }


def _problems(imports: dict[str, set[str]], allowed_extras: dict[str, set[str]]) -> list[str]:
    """Each import whose distribution is not declared where it must be, named with a file."""
    distributions = metadata.packages_distributions()
    declared = _declared()
    problems = []
    for module, files in sorted(imports.items()):
        where = sorted(files)[0]
        if module not in distributions:
            problems.append(f"{module} (imported by {where}) is not installed by any distribution")
            continue
        extras = allowed_extras.get(module, {""})
        if not any(declared.get(_normal(dist), set()) & extras for dist in distributions[module]):
            wanted = " or ".join(f"[{e}]" if e else "the base dependencies" for e in sorted(extras))
            problems.append(
                f"{module} (imported by {where}; distribution {', '.join(distributions[module])}) "
                f"is not declared in {wanted} of pyproject.toml"
            )
    return problems


def test_every_import_of_the_package_is_a_declared_requirement() -> None:
    imports = _third_party(_imports([REPO / "host" / "pocketbench", REPO / "models"]), set())
    assert "torch" in imports and "torchao" in imports  # the scan sees lazy imports too
    allowed = {module: {extra} for module, (extra, _why) in EXTRA_ONLY.items()}
    assert _problems(imports, allowed) == []


def test_every_import_of_the_tests_and_benchmarks_is_declared_for_development() -> None:
    roots = [REPO / "tests", REPO / "benchmarks"]
    local = {"tests"} | {p.stem for root in roots for p in root.glob("*.py")}
    imports = _third_party(_imports(roots), local)
    assert "pytest" in imports
    everything = {module: {"", "dev", "hf"} for module in imports}  # `just setup` installs [dev,docs,hf]
    assert _problems(imports, everything) == []


def test_an_undeclared_import_is_named_with_its_file(tmp_path: Path) -> None:
    """The check can fail: jinja2 is installed here (torch needs it) but pocketbench never declares it."""
    if "jinja2" not in metadata.packages_distributions():
        pytest.skip("jinja2 is not installed here")
    (tmp_path / "uses_jinja.py").write_text("def render():\n    import jinja2.sandbox\n")
    problems = _problems(_third_party(_imports([tmp_path], tmp_path), set()), {})
    assert len(problems) == 1
    assert problems[0].startswith("jinja2 (imported by uses_jinja.py; distribution ")
    assert problems[0].endswith("is not declared in the base dependencies of pyproject.toml")
