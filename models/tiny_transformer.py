"""Transformer encoder (4 layers, d=256, 128 byte tokens) trained to name a stdlib source window's package.

The task is real and offline: 128-byte windows of the `.py` sources this Python ships
(`_stdlib_text.py`), labelled with their top-level package (the 10 packages with the most files),
scored on windows of held-out files. Trained once per machine (seeded, cached by the stdlib's
file list and this file), with a progress bar. The vocabulary stays 1000 (only bytes 0–255 occur)
so the architecture, size and speed are those of the random-weight model it replaces.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from pocketbench.models.registry import ModelBundle
from pocketbench_models import _stdlib_text
from pocketbench_models._data import top1_scorer
from pocketbench_models._stdlib_text import StdlibCorpus, TextFile, load_corpus, sample_windows
from pocketbench_models._trained import Trained, cached_weights, fit, weights_key
from torch import nn

SEED = 0
VOCAB, SEQ, DIM, HEADS, LAYERS, FFN, CLASSES = 1000, 128, 256, 4, 4, 1024, 10
TRAIN_PER_CLASS, EVAL_PER_CLASS = 400, 20  # windows per package: training files / held-out files
BATCH, STEPS, LR = 16, 100, 1e-3


class SelfAttention(nn.Module):
    """Multi-head attention with 3-D bmm: it delegates to XNNPACK far better than 4-D matmul
    or F.scaled_dot_product_attention (see shared notes on delegation)."""

    def __init__(self) -> None:
        super().__init__()
        self.qkv = nn.Linear(DIM, 3 * DIM)
        self.out = nn.Linear(DIM, DIM)
        self.scale = (DIM // HEADS) ** -0.5

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, seq, _ = x.shape
        head_dim = DIM // HEADS
        q, k, v = self.qkv(x).chunk(3, dim=-1)

        def split(t: torch.Tensor) -> torch.Tensor:
            return t.reshape(batch, seq, HEADS, head_dim).transpose(1, 2).reshape(batch * HEADS, seq, head_dim)

        q, k, v = split(q), split(k), split(v)
        attention = torch.softmax(torch.bmm(q, k.transpose(1, 2)) * self.scale, dim=-1)
        mixed = torch.bmm(attention, v).reshape(batch, HEADS, seq, head_dim).transpose(1, 2)
        return self.out(mixed.reshape(batch, seq, DIM))


class EncoderLayer(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.attention = SelfAttention()
        self.norm1 = nn.LayerNorm(DIM)
        self.ffn = nn.Sequential(nn.Linear(DIM, FFN), nn.GELU(), nn.Linear(FFN, DIM))
        self.norm2 = nn.LayerNorm(DIM)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.norm1(x + self.attention(x))
        return self.norm2(x + self.ffn(x))


class TinyTransformer(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(VOCAB, DIM)
        self.position = nn.Parameter(torch.randn(1, SEQ, DIM) * 0.02)
        self.layers = nn.Sequential(*[EncoderLayer() for _ in range(LAYERS)])
        self.head = nn.Linear(DIM, CLASSES)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        x = self.layers(self.embed(tokens) + self.position)
        return self.head(x.mean(dim=1))


def _windows(
    files: list[TextFile], per_class: int, packages: list[str], seed: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """`per_class` byte windows from each package's files, with the package index as label."""
    generator = torch.Generator().manual_seed(seed)
    tokens, labels = [], []
    for label, package in enumerate(packages):
        tokens.append(sample_windows([f for f in files if f.package == package], SEQ, per_class, generator))
        labels.append(torch.full((per_class,), label, dtype=torch.long))
    return torch.cat(tokens), torch.cat(labels)


@dataclass(frozen=True)
class PackageTask:
    """Which of the stdlib's CLASSES largest packages a 128-byte window of source comes from."""

    packages: list[str]
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor  # windows of held-out files only
    y_test: torch.Tensor
    corpus: StdlibCorpus


def load_task(corpus: StdlibCorpus | None = None) -> PackageTask:
    corpus = corpus or load_corpus()
    packages = corpus.packages(CLASSES)
    train_files, held_out = corpus.split(packages)
    x_train, y_train = _windows(train_files, TRAIN_PER_CLASS, packages, SEED + 1)
    x_test, y_test = _windows(held_out, EVAL_PER_CLASS, packages, SEED + 2)
    return PackageTask(packages, x_train, y_train, x_test, y_test, corpus)


def batches(x: torch.Tensor, y: torch.Tensor, seed: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Endless seeded shuffled batches of (tokens, labels)."""
    generator = torch.Generator().manual_seed(seed)
    while True:
        order = torch.randperm(len(x), generator=generator)
        for start in range(0, len(x) - BATCH + 1, BATCH):
            idx = order[start : start + BATCH]
            yield x[idx], y[idx]


def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    with torch.no_grad():
        predicted = torch.cat([model(x[i : i + 64]).argmax(1) for i in range(0, len(x), 64)])
    return float((predicted == y).float().mean())


def train(task: PackageTask, steps: int = STEPS, seed: int = SEED) -> tuple[TinyTransformer, dict[str, Any]]:
    """Seeded training from scratch; returns the model (eval mode) and its held-out accuracy."""
    torch.manual_seed(seed)
    model = TinyTransformer().train()
    fit(
        model.parameters(),
        lambda batch: nn.functional.cross_entropy(model(batch[0]), batch[1]),
        batches(task.x_train, task.y_train, seed + 3),
        steps,
        LR,
        f"training tiny_transformer on stdlib bytes ({steps} steps, once per machine)",
    )
    model.eval()
    facts = {
        "data": f"byte windows of Python {task.corpus.manifest()['python']} stdlib sources, "
        f"{len(task.packages)} packages, held out by file",
        "packages": task.packages,
        "held_out_accuracy": accuracy(model, task.x_test, task.y_test),
        "held_out_windows": len(task.x_test),
        "train_steps": steps,
        "corpus": task.corpus.manifest(),
    }
    return model, facts


def trained_model(task: PackageTask) -> tuple[TinyTransformer, Trained]:
    """The trained model, from the cache or trained now (keyed by this file and the stdlib files)."""
    sources = [Path(__file__), Path(_stdlib_text.__file__)]
    trained = cached_weights("tiny_transformer", weights_key(sources, task.corpus.fingerprint), lambda: train(task))
    model = TinyTransformer()
    model.load_state_dict(trained.state)
    return model.eval(), trained


def factory() -> ModelBundle:
    task = load_task()
    model, trained = trained_model(task)

    def calibration() -> Iterator[tuple[torch.Tensor]]:
        for i in range(0, 64):
            yield (task.x_train[i * 7 % len(task.x_train)].unsqueeze(0),)

    def train_batches() -> Iterator[tuple[tuple[torch.Tensor], torch.Tensor]]:
        for x, y in itertools.islice(batches(task.x_train, task.y_train, SEED + 4), len(task.x_train) // BATCH):
            yield (x,), y

    return ModelBundle(
        module=model,
        example_inputs=(task.x_test[:1],),
        calibration=calibration,
        eval_inputs=[(task.x_test[i : i + 1],) for i in range(len(task.x_test))],
        score=top1_scorer(task.y_test),
        train_batches=train_batches,
        description="transformer encoder, 4×256, 128 byte tokens: which stdlib package a window of source is from",
        # Recovery after pruning at the rate it trained at: at 3e-3 its distillation lost 20 points.
        extra={"weights": str(trained.path), "packages": task.packages, "recovery_lr": LR},
    )
