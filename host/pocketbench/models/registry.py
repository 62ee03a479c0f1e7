"""The models registry: built-ins from models/ and user factories (`file.py:fn`, `pkg.mod:fn`).

A factory returns a `ModelBundle`: the eval-mode module plus the data every later stage needs
(example inputs for export, calibration batches, held-out inputs and, where real labels exist,
a scoring function). Importing this module does not import torch.
"""

from __future__ import annotations

import ast
import hashlib
import importlib
import importlib.util
import inspect
import pkgutil
import sys
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


GENERATIVE_CONTRACT = (
    "a GenerativeBundle's module is forward(tokens int64 [1, T], positions int64 [T]) -> logits [1, T, vocab] "
    "with its KV cache in buffers"
)


@dataclass(kw_only=True)
class GenerativeBundle(ModelBundle):
    """A decoder that generates token by token (docs/generative.md).

    `module(tokens [1, T], positions [T])` returns logits for every given token and writes their
    keys/values into its cache buffers at `positions` (`index_copy_`), attending to cache slots
    ≤ each position; T runs from 1 (decode) to `context` (the cache length). `eval_tokens` [n, L]
    (L ≤ context + 1) is held-out text for perplexity; `stream` (≥ context int64 ids) is the fixed
    token stream every variant is prompted and teacher-forced with.
    """

    context: int
    eval_tokens: torch.Tensor
    stream: torch.Tensor
    example_inputs: tuple[torch.Tensor, ...] = ()
    eval_inputs: list[tuple[torch.Tensor, ...]] = field(default_factory=list)

    def __post_init__(self) -> None:
        import torch

        if not self.example_inputs:
            self.example_inputs = (torch.zeros(1, 4, dtype=torch.long), torch.arange(4))

    @property
    def dynamic_shapes(self) -> tuple[dict[int, Any], dict[int, Any]]:
        """T dynamic from 1 to the context: one method for prefill and decode over one cache."""
        import torch

        tokens = torch.export.Dim("tokens", min=1, max=self.context)
        return ({1: tokens}, {0: tokens})


def export_dynamic_shapes(bundle: ModelBundle) -> Any:
    """A generative bundle's dynamic token count (one method for prefill and decode), else None."""
    return bundle.dynamic_shapes if isinstance(bundle, GenerativeBundle) else None


def check_generative(name: str, bundle: GenerativeBundle) -> int:
    """The vocabulary size, after one probe call that the contract holds; else one line naming it."""
    import torch

    try:
        inspect.signature(bundle.module.forward).bind(None, None)
    except TypeError:
        raise PocketbenchError(
            f"model {name!r}: {GENERATIVE_CONTRACT}; its forward{inspect.signature(bundle.module.forward)} "
            "does not take (tokens, positions)"
        ) from None
    if not (isinstance(bundle.context, int) and bundle.context >= 2):
        raise PocketbenchError(f"model {name!r}: GenerativeBundle.context must be an int ≥ 2, got {bundle.context!r}")
    eval_tokens, stream = bundle.eval_tokens, bundle.stream
    if not (
        isinstance(eval_tokens, torch.Tensor)
        and eval_tokens.dim() == 2
        and 2 <= eval_tokens.shape[1] <= bundle.context + 1
    ):
        raise PocketbenchError(
            f"model {name!r}: GenerativeBundle.eval_tokens must be int64 [windows, L] with 2 ≤ L ≤ context + 1"
        )
    if not (isinstance(stream, torch.Tensor) and stream.dim() == 1 and len(stream) >= bundle.context):
        raise PocketbenchError(f"model {name!r}: GenerativeBundle.stream must be int64 [≥ context] token ids")
    try:
        with torch.no_grad():
            logits = bundle.module(torch.zeros(1, 2, dtype=torch.long), torch.arange(2))
    except Exception as exc:
        raise PocketbenchError(
            f"model {name!r}: {GENERATIVE_CONTRACT}; a probe call failed: {first_line(exc)}"
        ) from exc
    if not (isinstance(logits, torch.Tensor) and logits.dim() == 3 and tuple(logits.shape[:2]) == (1, 2)):
        shape = tuple(logits.shape) if isinstance(logits, torch.Tensor) else type(logits).__name__
        raise PocketbenchError(f"model {name!r}: {GENERATIVE_CONTRACT}; for 2 tokens it returned {shape}")
    return int(logits.shape[2])


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
        except (Exception, SystemExit) as exc:  # sys.exit() in a factory ends its cell, not the run
            raise PocketbenchError(f"model {self.name!r}: its factory raised {type(exc).__name__}: {exc}") from exc
        if not isinstance(bundle, ModelBundle):
            raise PocketbenchError(
                f"model {self.name!r}: the factory returned {type(bundle).__name__}, "
                "not a pocketbench.models.registry.ModelBundle"
            )
        bundle.module.eval()
        if isinstance(bundle, GenerativeBundle):
            bundle.extra["vocab"] = check_generative(self.name, bundle)
        return bundle

    def source_digest(self) -> str:
        """Hash of the file defining the model and of the model code it imports (local_imports):
        part of every artifact's cache key, so editing a helper (tiny_llama's attention lives in
        `_llama.py`) re-exports the model instead of reusing a `.pte` built from the old code."""
        digest = hashlib.sha256()
        for path in [self.source_file, *sorted(local_imports(self.source_file))]:
            digest.update(path.name.encode() + b"\0" + path.read_bytes())
        return digest.hexdigest()


def local_imports(source: Path) -> set[Path]:
    """The model code `source` imports, transitively: `.py` files beside the importing file (a
    module matched by the last part of its name: `from helpers import x`, `from . import
    _trained`) and the built-in models' helpers (`pocketbench_models._llama`, which a user's
    decoder may build on). Libraries are not model code; files that do not parse add nothing."""
    builtin = Path(importlib.import_module(BUILTIN_PACKAGE).__path__[0])
    found: set[Path] = set()
    pending = [source]
    while pending:
        current = pending.pop()
        try:
            tree = ast.parse(current.read_text(encoding="utf-8"))
        except (OSError, SyntaxError, UnicodeDecodeError, ValueError):
            continue
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""] + [f"{node.module or ''}.{alias.name}" for alias in node.names]
            for name in filter(None, names):
                folder = builtin if name.split(".")[0] == BUILTIN_PACKAGE else current.parent
                module = folder / f"{name.rsplit('.', 1)[-1]}.py"
                if module.is_file() and module != source and module not in found:
                    found.add(module)
                    pending.append(module)
    return found


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
