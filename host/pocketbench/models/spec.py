"""What a model is to pocketbench: the bundle a factory returns (`ModelBundle`, a decoder's
`GenerativeBundle` and its contract), how every stage exports it (`export_program`), the data a
run hands a checkpoint (`ModelData`) and where a model comes from (`ModelSpec`, whose source
digest keys the artifact cache). registry.py resolves names to specs; hf.py builds them for
`hf:` checkpoints. Importing this module does not import torch.
"""

from __future__ import annotations

import ast
import hashlib
import importlib
import inspect
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
    # torch.export's strict (TorchDynamo) mode: transformers' static-cache wrapper exports only in
    # it (non-strict export leaves a graph the edge decompositions refuse).
    export_strict: bool = False


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


def export_program(bundle: ModelBundle, module: torch.nn.Module | None = None) -> Any:
    """`torch.export` of the bundle's module (or of its compressed `module`) as every stage that
    exports does it: the bundle's example inputs, dynamic shapes and strictness, under no_grad (a
    KV cache written in place cannot be exported with autograd on)."""
    import torch

    with torch.no_grad():
        return torch.export.export(
            bundle.module if module is None else module,
            bundle.example_inputs,
            dynamic_shapes=export_dynamic_shapes(bundle),
            strict=bundle.export_strict,
        )


@dataclass(frozen=True)
class ModelData:
    """What a run gives a model besides its name: text (`--text`) for a language model's prompt
    and perplexity, a folder of labelled images (`--images`) for a classifier's accuracy, and the
    KV cache length a checkpoint's decoder is exported with (the run's prompt + decode tokens).
    Only `hf:` checkpoints read it: a factory brings its own data."""

    text: Path | None = None
    images: Path | None = None
    context: int = 192


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
    # What else decides the exported program besides the code (an `hf:` checkpoint's data and
    # cache length, the transformers version): joins the source digest.
    digest_extra: str = ""

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
        digest = hashlib.sha256(self.digest_extra.encode())
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
