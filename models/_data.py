"""Helpers shared by built-in models: seeded random batches and top-1 scoring."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import torch


def random_batches(shape: tuple[int, ...], count: int, seed: int) -> Callable[[], Iterator[tuple[torch.Tensor]]]:
    """A re-iterable source of `count` seeded normal batches (for models without real data)."""

    def batches() -> Iterator[tuple[torch.Tensor]]:
        generator = torch.Generator().manual_seed(seed)
        for _ in range(count):
            yield (torch.randn(shape, generator=generator),)

    return batches


def top1_scorer(labels: torch.Tensor) -> Callable[[Sequence[torch.Tensor]], float]:
    """Score a list of per-sample logits against real labels: top-1 accuracy in [0, 1]."""

    def score(outputs: Sequence[torch.Tensor]) -> float:
        predicted = torch.stack([o.reshape(-1).argmax() for o in outputs])
        return float((predicted == labels[: len(predicted)]).float().mean())

    return score
