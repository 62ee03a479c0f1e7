"""What the compression steps share while a recipe runs: the bundle, progress, masks and stats.

Its own module so the steps (quantize, prune, training) and the pipeline that dispatches to them
import it without importing each other.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

import torch

from pocketbench.errors import PocketbenchError
from pocketbench.models.registry import ModelBundle
from pocketbench.progress import Reporter


@dataclass
class Context:
    bundle: ModelBundle
    reporter: Reporter
    # Unstructured-pruning masks (weight name → 0/1 tensor): training steps re-apply them.
    masks: dict[str, torch.Tensor] = field(default_factory=dict)
    stats: dict[str, Any] = field(default_factory=dict)


class StopCompression(PocketbenchError):
    """Raised by an epoch watcher to abandon a recipe mid-training (a search stopping a hopeless
    trial): the pipeline passes it through as it is, not as a failed step."""


# Called after each training epoch with (epoch number from 1, epochs planned, the module in eval
# mode); it may raise StopCompression. Set by `watching_epochs`, for the code run inside.
EpochWatcher = Callable[[int, int, torch.nn.Module], None]
_WATCHER: ContextVar[EpochWatcher | None] = ContextVar("pocketbench_epoch_watcher", default=None)


@contextmanager
def watching_epochs(watcher: EpochWatcher) -> Iterator[None]:
    """Show every training epoch of the recipes built inside to `watcher`."""
    token = _WATCHER.set(watcher)
    try:
        yield
    finally:
        _WATCHER.reset(token)


def epoch_done(epoch: int, epochs: int, module: torch.nn.Module) -> None:
    """Tell the watcher (if any) that `epoch` of `epochs` is done; training resumes afterwards."""
    watcher = _WATCHER.get()
    if watcher is None:
        return
    was_training = module.training
    module.eval()
    try:
        with torch.no_grad():
            watcher(epoch, epochs, module)
    finally:
        module.train(was_training)
