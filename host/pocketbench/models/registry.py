"""The models registry: built-ins from models/ and user factories (`file.py:fn`, `pkg.mod:fn`),
and Hugging Face checkpoints (`hf:CHECKPOINT`, hf.py).

A factory returns a `ModelBundle` (spec.py): the eval-mode module plus the data every later stage
needs (example inputs for export, calibration batches, held-out inputs and, where real labels
exist, a scoring function). Importing this module does not import torch.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import pkgutil
import sys
from pathlib import Path
from typing import Any

from pocketbench.errors import PocketbenchError, first_line
from pocketbench.models.hf import HF_PREFIX, checkpoint_spec
from pocketbench.models.spec import (
    BUILTIN_PACKAGE,
    GENERATIVE_CONTRACT,
    GenerativeBundle,
    ModelBundle,
    ModelData,
    ModelSpec,
    check_generative,
    export_dynamic_shapes,
    export_program,
    local_imports,
)

# What callers have always imported from here (the types live in spec.py).
__all__ = [
    "BUILTIN_PACKAGE", "GENERATIVE_CONTRACT", "GenerativeBundle", "ModelBundle", "ModelData", "ModelSpec",
    "builtin_names", "check_generative", "describe_builtins", "export_dynamic_shapes", "export_program",
    "local_imports", "resolve",
]  # fmt: skip


def builtin_names() -> list[str]:
    """Names of the built-in models (one module each in models/)."""
    package = importlib.import_module(BUILTIN_PACKAGE)
    return sorted(m.name for m in pkgutil.iter_modules(package.__path__) if not m.name.startswith("_"))


def resolve(reference: str, data: ModelData | None = None) -> ModelSpec:
    """Find a model by built-in name, `path/to/file.py:factory`, `package.module:factory` or
    `hf:CHECKPOINT` (a Hugging Face checkpoint folder or hub id, read with `data`)."""
    if reference.startswith(HF_PREFIX):
        return checkpoint_spec(reference, data or ModelData())
    if ":" not in reference:
        if reference not in builtin_names():
            known = ", ".join(builtin_names())
            raise PocketbenchError(
                f"unknown model {reference!r}: use one of {known}, or file.py:factory / module:factory / hf:CHECKPOINT"
            )
        module = importlib.import_module(f"{BUILTIN_PACKAGE}.{reference}")
        return _spec(reference, module, "factory", reference)
    target, _, attr = reference.rpartition(":")
    if not attr.isidentifier():
        raise PocketbenchError(
            f"model {reference!r}: {attr!r} is not a factory name; use file.py:factory or module:factory"
        )
    if target.endswith(".py"):
        path = Path(target).expanduser()
        if not _is_file(path):
            raise PocketbenchError(f"model {reference!r}: no file {path}; check the path")
        module_spec = importlib.util.spec_from_file_location(f"pocketbench_user_{path.stem}", path)
        assert module_spec and module_spec.loader  # spec_from_file_location on an existing .py
        module = importlib.util.module_from_spec(module_spec)
        try:
            module_spec.loader.exec_module(module)
        except Exception as exc:
            raise PocketbenchError(f"model {reference!r}: importing {path} failed: {first_line(exc)}") from exc
    else:
        if not all(part.isidentifier() for part in target.split(".")):
            raise PocketbenchError(
                f"model {reference!r}: {target!r} is neither a .py file nor a module name (package.module);"
                " use file.py:factory or module:factory"
            )
        _refuse_standard_library(reference, target)
        try:
            module = importlib.import_module(target)
        except ImportError as exc:
            raise PocketbenchError(f"model {reference!r}: cannot import {target}: {exc}") from exc
        except Exception as exc:  # the module itself raised while importing
            raise PocketbenchError(f"model {reference!r}: importing {target} failed: {first_line(exc)}") from exc
    return _spec(reference, module, attr, reference)


def _is_file(path: Path) -> bool:
    try:
        return path.is_file()
    except OSError:  # a name too long for the file system, or a folder we may not enter
        return False


def _refuse_standard_library(reference: str, module: str) -> None:
    """`os:abort`, `sys:exit`, `time:time`: Python's own functions are not model factories, and
    some end the process that calls them; refused by name before anything is called."""
    top = module.split(".")[0]
    if top in sys.stdlib_module_names or top == "builtins":
        raise PocketbenchError(
            f"model {reference!r}: {module} is Python's standard library, not a model module; "
            "give your own file.py:factory or package.module:factory"
        )


def _spec(name: str, module: Any, attr: str, reference: str) -> ModelSpec:
    factory = getattr(module, attr, None)
    if not callable(factory):
        raise PocketbenchError(f"model {reference!r}: {module.__name__} has no callable {attr!r}")
    # A factory imported into the user's module from the standard library (`from os import abort`).
    if inspect.isbuiltin(factory):
        raise PocketbenchError(
            f"model {reference!r}: {attr!r} is a built-in function, not a factory returning a ModelBundle"
        )
    _refuse_standard_library(reference, getattr(factory, "__module__", None) or module.__name__)
    try:
        source = Path(inspect.getfile(module))
    except TypeError as exc:  # a module compiled into Python has no file to hash for the cache key
        raise PocketbenchError(
            f"model {reference!r}: {module.__name__} has no source file; use file.py:factory"
        ) from exc
    return ModelSpec(name=name, factory=factory, source_file=source)


def describe_builtins() -> list[tuple[str, str]]:
    """(name, one-line description) of each built-in, from its module docstring."""
    rows = []
    for name in builtin_names():
        module = importlib.util.find_spec(f"{BUILTIN_PACKAGE}.{name}")
        assert module and module.origin
        doc = _first_docstring_line(Path(module.origin))
        rows.append((name, doc))
    return rows


def _first_docstring_line(path: Path) -> str:
    import ast

    doc = ast.get_docstring(ast.parse(path.read_text())) or ""
    return doc.strip().splitlines()[0] if doc.strip() else ""
