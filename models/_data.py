"""Helpers shared by built-in models: top-1 scoring against real labels."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch


def top1_scorer(labels: torch.Tensor) -> Callable[[Sequence[torch.Tensor]], float]:
    """Score a list of per-sample logits against real labels: top-1 accuracy in [0, 1]."""

    def score(outputs: Sequence[torch.Tensor]) -> float:
        predicted = torch.stack([o.reshape(-1).argmax() for o in outputs])
        return float((predicted == labels[: len(predicted)]).float().mean())

    return score
