"""The models registry: built-ins from models/ and user factories (`file.py:fn`, `pkg.mod:fn`).

A factory returns a `ModelBundle`: the eval-mode module plus the data every later stage needs
(example inputs for export, calibration batches, held-out inputs and, where real labels exist,
a scoring function). Importing this module does not import torch.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import pkgutil
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pocketbench.errors import PocketbenchError, first_line

if TYPE_CHECKING:
    import torch

BUILTIN_PACKAGE = "pocketbench_models"


@dataclass
class ModelBundle:
    """A model and its data, as a factory hands it over."""

    module: torch.nn.Module
    example_inputs: tuple[torch.Tensor, ...]
    calibration: Callable[[], Iterable[tuple[torch.Tensor, ...]]]
    eval_inputs: list[tuple[torch.Tensor, ...]]
    # Scores the device's outputs for `eval_inputs` (e.g. top-1 accuracy against real labels);
    # None when the model has no real labels, so no accuracy is ever made up.
    score: Callable[[Sequence[torch.Tensor]], float] | None = None
    # Labelled (or unlabelled: labels None) training batches for steps that train (QAT, distill).
    train_batches: Callable[[], Iterable[tuple[tuple[torch.Tensor, ...], torch.Tensor | None]]] | None = None
    description: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ModelSpec:
    """Where a model comes from; loading it is deferred until a stage needs it."""

    name: str
    factory: Callable[[], ModelBundle]
    source_file: Path

    def load(self) -> ModelBundle:
        try:
            bundle = self.factory()
        except PocketbenchError:
            raise
        except Exception as exc:
            raise PocketbenchError(f"model {self.name!r}: its factory raised {type(exc).__name__}: {exc}") from exc
        if not isinstance(bundle, ModelBundle):
            raise PocketbenchError(
                f"model {self.name!r}: the factory returned {type(bundle).__name__}, "
                "not a pocketbench.models.registry.ModelBundle"
            )
        bundle.module.eval()
        return bundle

    def source_digest(self) -> str:
        """Hash of the file defining the model: part of every artifact's cache key."""
        return hashlib.sha256(self.source_file.read_bytes()).hexdigest()


def builtin_names() -> list[str]:
    """Names of the built-in models (one module each in models/)."""
    package = importlib.import_module(BUILTIN_PACKAGE)
    return sorted(m.name for m in pkgutil.iter_modules(package.__path__) if not m.name.startswith("_"))


def resolve(reference: str) -> ModelSpec:
    """Find a model by built-in name, `path/to/file.py:factory` or `package.module:factory`."""
    if ":" not in reference:
        if reference not in builtin_names():
            known = ", ".join(builtin_names())
            raise PocketbenchError(
                f"unknown model {reference!r}: use one of {known}, or file.py:factory / module:factory"
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


def _spec(name: str, module: Any, attr: str, reference: str) -> ModelSpec:
    factory = getattr(module, attr, None)
    if not callable(factory):
        raise PocketbenchError(f"model {reference!r}: {module.__name__} has no callable {attr!r}")
    return ModelSpec(name=name, factory=factory, source_file=Path(inspect.getfile(module)))


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
