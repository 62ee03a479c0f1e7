"""Trained weights in a shared cache: two processes (or test workers) that want the same weights
train them once; the second waits for the first and loads what it wrote."""

from __future__ import annotations

import threading
from pathlib import Path

import torch
from pocketbench_models._trained import cached_weights


def test_weights_being_trained_elsewhere_are_waited_for_not_trained_again(tmp_path: Path) -> None:
    training, go = threading.Event(), threading.Event()
    trainings: list[str] = []
    results: dict[str, object] = {}

    def train(who: str):
        def fit():
            trainings.append(who)
            training.set()
            assert go.wait(30)
            torch.manual_seed(len(who))
            return torch.nn.Linear(2, 2), {"by": who}

        return fit

    def want(who: str) -> None:
        results[who] = cached_weights("m", "k", train(who), cache=tmp_path)

    first = threading.Thread(target=want, args=("first",))
    first.start()
    assert training.wait(30)  # the first holds the lock while it trains
    second = threading.Thread(target=want, args=("second",))
    second.start()
    second.join(0.5)
    assert second.is_alive()  # waiting for the first, not training
    go.set()
    first.join(30)
    second.join(30)
    assert trainings == ["first"]
    a, b = results["first"], results["second"]
    assert a.trained_now and not b.trained_now and b.meta["by"] == "first"
    assert all(torch.equal(a.state[k], b.state[k]) for k in a.state)
