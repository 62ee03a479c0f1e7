"""Small CNN trained on scikit-learn's bundled 8×8 handwritten digits (real labels, held-out test)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import torch
from pocketbench.models.registry import ModelBundle
from pocketbench_models._data import top1_scorer
from pocketbench_models._trained import cached_weights, weights_key
from torch import nn

SEED = 0
EPOCHS = 6
BATCH = 32


class DigitsCNN(nn.Module):
    """Two conv blocks and a two-layer classifier (~226 k parameters)."""

    def __init__(self, width: int = 32, hidden: int = 200) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, width, 3, padding=1),
            nn.BatchNorm2d(width),
            nn.ReLU(),
            nn.Conv2d(width, 2 * width, 3, padding=1),
            nn.BatchNorm2d(2 * width),
            nn.ReLU(),
            nn.MaxPool2d(2),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(2 * width * 16, hidden),
            nn.ReLU(),
            nn.Linear(hidden, 10),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


def load_split() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """sklearn digits scaled to [0, 1], split 80/20 with a fixed seed, stratified."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    images = torch.tensor(digits.images, dtype=torch.float32).unsqueeze(1) / 16.0
    labels = torch.tensor(digits.target, dtype=torch.long)
    x_train, x_test, y_train, y_test = train_test_split(
        images, labels, test_size=0.2, random_state=SEED, stratify=labels
    )
    return x_train, y_train, x_test, y_test


def data_fingerprint(split: tuple[torch.Tensor, ...]) -> str:
    """sha256 of the split's tensors: what weights trained on it are keyed by."""
    digest = hashlib.sha256()
    for tensor in split:
        digest.update(tensor.numpy().tobytes())
    return digest.hexdigest()


def train(model: nn.Module, x: torch.Tensor, y: torch.Tensor, epochs: int, seed: int = SEED) -> None:
    """Seeded Adam training on (x, y); leaves the model in eval mode."""
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
    model.train()
    for _ in range(epochs):
        order = torch.randperm(len(x), generator=generator)
        for start in range(0, len(x), BATCH):
            idx = order[start : start + BATCH]
            optimizer.zero_grad()
            nn.functional.cross_entropy(model(x[idx]), y[idx]).backward()
            optimizer.step()
    model.eval()


def _train_fresh(split: tuple[torch.Tensor, ...]) -> tuple[DigitsCNN, dict[str, object]]:
    x_train, y_train, x_test, y_test = split
    torch.manual_seed(SEED)
    model = DigitsCNN()
    train(model, x_train, y_train, EPOCHS)
    with torch.no_grad():
        accuracy = float((model(x_test).argmax(1) == y_test).float().mean())
    return model, {"data": "scikit-learn digits 8×8, stratified 80/20 split", "held_out_accuracy": accuracy}


def factory() -> ModelBundle:
    split = load_split()
    x_train, y_train, x_test, y_test = split
    key = weights_key([Path(__file__)], data_fingerprint(split))
    model = DigitsCNN()
    model.load_state_dict(cached_weights("digits_cnn", key, lambda: _train_fresh(split)).state)
    model.eval()

    def calibration() -> Iterator[tuple[torch.Tensor]]:
        for i in range(0, 128):
            yield (x_train[i : i + 1],)

    def train_batches() -> Iterator[tuple[tuple[torch.Tensor], torch.Tensor]]:
        generator = torch.Generator().manual_seed(SEED + 1)
        order = torch.randperm(len(x_train), generator=generator)
        for start in range(0, len(x_train), BATCH):
            idx = order[start : start + BATCH]
            yield (x_train[idx],), y_train[idx]

    return ModelBundle(
        module=model,
        example_inputs=(x_test[:1],),
        calibration=calibration,
        eval_inputs=[(x_test[i : i + 1],) for i in range(len(x_test))],
        score=top1_scorer(y_test),
        train_batches=train_batches,
        description="CNN on sklearn digits, 8×8 grayscale, 10 classes",
    )
