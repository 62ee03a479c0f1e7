"""Content digests of what a compression result depends on: a module's weights, data batches,
the source of the code that computes it. Cache keys are built from these, never from names."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path
from types import ModuleType

import torch


def weights_digest(module: torch.nn.Module) -> str:
    """Hash of every parameter and buffer, in a stable order."""
    digest = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def tensors_digest(tensors: Iterable[torch.Tensor]) -> str:
    """Hash of tensors in order: their shapes, dtypes and values."""
    digest = hashlib.sha256()
    for tensor in tensors:
        digest.update(f"{tuple(tensor.shape)}{tensor.dtype}".encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def sources_digest(sources: Iterable[Path | ModuleType]) -> str:
    """Hash of source files (or modules' files) in order: editing the code that computes a
    result invalidates it."""
    digest = hashlib.sha256()
    for source in sources:
        path = source if isinstance(source, Path) else Path(str(source.__file__))
        digest.update(path.read_bytes())
    return digest.hexdigest()
