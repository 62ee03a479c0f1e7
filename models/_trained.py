"""Trained weights for the built-in models: seeded training with a progress bar, cached once per
machine under the cache dir and keyed by the data and code that made them.

The key covers the model's own source, this file, the data's fingerprint and the torch version,
so editing a model, other data (another Python's stdlib) or another torch retrains; everything
else loads the cached file. A JSON file beside the weights says what they were trained on, how
long that took and the held-out score.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from pocketbench.atomic import atomic_write_bytes, exclusive, lock_beside
from pocketbench.paths import cache_dir
from pocketbench.progress import current_reporter
from torch import nn


@dataclass(frozen=True)
class Trained:
    """Weights and what is known about them (data, seconds, held-out score)."""

    state: dict[str, torch.Tensor]
    meta: dict[str, Any]
    path: Path
    trained_now: bool


def weights_key(sources: Sequence[Path], data_fingerprint: str) -> str:
    """16 hex digits over the given source files, this file, the data and the torch version."""
    digest = hashlib.sha256()
    for source in [*sources, Path(__file__)]:
        digest.update(source.read_bytes())
    digest.update(data_fingerprint.encode())
    digest.update(torch.__version__.encode())
    return digest.hexdigest()[:16]


def cached_weights(
    name: str, key: str, train: Callable[[], tuple[nn.Module, dict[str, Any]]], cache: Path | None = None
) -> Trained:
    """The weights cached under `name-key`, or train them now (timed) and cache them.

    `train` returns the trained module and facts to keep (data, score); files are written
    atomically, so a training killed half-way leaves no weights that look finished.
    """
    folder = (cache or cache_dir()) / "weights"
    path = folder / f"{name}-{key}.pt"
    loaded = _load(path)
    if loaded is not None:
        return loaded

    # One process trains while others that want the same weights wait for them, then load them.
    def waiting(pid: str) -> Any:
        return current_reporter().status(f"waiting for pid {pid}, which is training {name}")

    with exclusive(lock_beside(path), waiting):
        return _load(path) or _train(name, key, train, path)


def _load(path: Path) -> Trained | None:
    """The finished weights at `path` (written last, after their JSON), or None."""
    if not path.exists():
        return None
    meta_path = path.with_suffix(".json")
    meta = json.loads(meta_path.read_text()) if meta_path.exists() else {}
    return Trained(torch.load(path, weights_only=True), meta, path, trained_now=False)


def _train(name: str, key: str, train: Callable[[], tuple[nn.Module, dict[str, Any]]], path: Path) -> Trained:
    """Train now (seeded, timed) and write the JSON, then the weights, atomically."""
    meta_path = path.with_suffix(".json")
    torch.manual_seed(0)
    started = time.monotonic()
    module, facts = train()
    meta = {
        **facts,
        "model": name,
        "key": key,
        "train_seconds": round(time.monotonic() - started, 1),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    state = module.state_dict()
    atomic_write_bytes(meta_path, json.dumps(meta, indent=1).encode())
    buffer = _serialized(state)
    atomic_write_bytes(path, buffer)
    return Trained(state, meta, path, trained_now=True)


def _serialized(state: dict[str, torch.Tensor]) -> bytes:
    import io

    buffer = io.BytesIO()
    torch.save(state, buffer)
    return buffer.getvalue()


def fit(
    parameters: Iterable[nn.Parameter],
    loss: Callable[[Any], torch.Tensor],
    batches: Iterator[Any],
    steps: int,
    lr: float,
    description: str,
) -> None:
    """Seeded AdamW with a one-cycle learning rate for `steps` batches, shown as a progress bar
    (the caller seeds `batches` and sets train/eval modes)."""
    parameters = list(parameters)
    optimizer = torch.optim.AdamW(parameters, lr=lr, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=steps, pct_start=0.25)
    for _, batch in zip(current_reporter().track(range(steps), description), batches, strict=False):
        optimizer.zero_grad()
        loss(batch).backward()
        optimizer.step()
        schedule.step()
