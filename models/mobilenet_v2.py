"""MobileNetV2 (written here, no torchvision), 224×224 RGB, 3.5 M params, trained end to end on scikit-learn's digits.

Data: the bundled 8×8 handwritten digits, upsampled (bilinear) to 3×224×224, with the same
stratified 80/20 split as digits_cnn, so the accuracy is real and held out. The head keeps
ImageNet's 1000 outputs (the digits use the first 10): size and speed stay MobileNetV2's.

Every layer is trained from seeded Kaiming weights with plain batch-norm (default eps, statistics
the network's own), so compression acts on a network like the ones users ship. A training step at
224×224 costs about 20 steps at 64×64 on two CPU cores, and the network is fully convolutional, so
it trains with progressive resizing: most epochs at 64×64, then 128×128, then a second, shorter
learning-rate cycle at 160×160 and 224×224, and finally batch-norm statistics re-estimated at
224×224 (train mode, no gradient: the train/test resolution fix of FixRes), the size phones run.
That fits in a few minutes on an idle machine, so the weights are trained on the user's machine
(seeded, cached by the data, this file and the training code, with a progress bar) instead of
being shipped.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import torch
from pocketbench.models.registry import ModelBundle
from pocketbench.progress import current_reporter
from pocketbench_models import digits_cnn
from pocketbench_models._data import top1_scorer
from pocketbench_models._trained import Trained, cached_weights, fit, weights_key
from torch import nn

SEED = 0
INPUT_SHAPE = (1, 3, 224, 224)
# (expansion t, output channels c, repeats n, first stride s), as in the MobileNetV2 paper.
INVERTED_RESIDUAL_SETTINGS = [
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
]
# Progressive resizing: cycles of (peak learning rate, stages of (side of the square input, epochs)),
# each cycle one one-cycle schedule. A network trained up to 128×128 loses ~4 points at 224×224 even
# with its batch-norm statistics re-estimated there, so the second cycle re-warms at 160 and 224.
Cycle = tuple[float, tuple[tuple[int, float], ...]]
CYCLES: tuple[Cycle, ...] = ((3e-3, ((64, 12), (128, 3))), (1e-3, ((160, 1), (224, 1.5))))
BATCH = 32
# Augmentation: each image shifted by up to half a digit pixel (1/16 of the side) and scaled ±10 %.
SHIFT, SCALE = 1 / 16, 0.1
RECALIBRATION_IMAGES = 512  # training digits whose 224×224 batch statistics become the running ones
EVAL_IMAGES = 100  # held-out images the device runs (60 MB of 224×224 inputs); the cache scores all 360


def conv_bn_relu(c_in: int, c_out: int, kernel: int, stride: int, groups: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, kernel, stride, kernel // 2, groups=groups, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU6(inplace=True),
    )


class InvertedResidual(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int, expansion: int) -> None:
        super().__init__()
        hidden = c_in * expansion
        layers: list[nn.Module] = []
        if expansion != 1:
            layers.append(conv_bn_relu(c_in, hidden, 1, 1))
        layers += [
            conv_bn_relu(hidden, hidden, 3, stride, groups=hidden),
            nn.Conv2d(hidden, c_out, 1, bias=False),
            nn.BatchNorm2d(c_out),
        ]
        self.block = nn.Sequential(*layers)
        self.residual = stride == 1 and c_in == c_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.block(x) if self.residual else self.block(x)


class MobileNetV2(nn.Module):
    def __init__(self, num_classes: int = 1000) -> None:
        super().__init__()
        layers: list[nn.Module] = [conv_bn_relu(3, 32, 3, 2)]
        c_in = 32
        for t, c, n, s in INVERTED_RESIDUAL_SETTINGS:
            for i in range(n):
                layers.append(InvertedResidual(c_in, c, s if i == 0 else 1, t))
                c_in = c
        layers.append(conv_bn_relu(c_in, 1280, 1, 1))
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(1280, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.pool(self.features(x)), 1))


def _normalized(images: torch.Tensor) -> torch.Tensor:
    """[0, 1] grey → [-1, 1] RGB, channels-last."""
    return ((images - 0.5) / 0.5).repeat(1, 3, 1, 1).contiguous(memory_format=torch.channels_last)


def digits_images(images: torch.Tensor, side: int = INPUT_SHAPE[-1]) -> torch.Tensor:
    """8×8 digits in [0, 1] → (N, 3, side, side) in [-1, 1], bilinear, channels-last."""
    return _normalized(nn.functional.interpolate(images, size=(side, side), mode="bilinear", align_corners=False))


def augmented_images(images: torch.Tensor, side: int, generator: torch.Generator) -> torch.Tensor:
    """`digits_images` with each digit randomly shifted and scaled (bilinear, edges replicated)."""
    count = len(images)
    zoom = 1 + SCALE * (2 * torch.rand(count, generator=generator) - 1)
    shift = 2 * SHIFT * (2 * torch.rand(count, 2, generator=generator) - 1)  # the image spans [-1, 1]
    theta = torch.zeros(count, 2, 3)
    theta[:, 0, 0] = theta[:, 1, 1] = 1 / zoom
    theta[:, :, 2] = shift
    grid = nn.functional.affine_grid(theta, [count, 1, side, side], align_corners=False)
    return _normalized(nn.functional.grid_sample(images, grid, padding_mode="border", align_corners=False))


def _batches(
    x: torch.Tensor, y: torch.Tensor, stages: Iterable[tuple[int, float]], generator: torch.Generator
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Shuffled, augmented batches: each stage's epochs at its side (a fraction ends mid-epoch)."""
    for side, epochs in stages:
        batches = (
            (augmented_images(x[idx], side, generator), y[idx])
            for order in iter(lambda: torch.randperm(len(x), generator=generator), None)
            for idx in order[: len(x) - len(x) % BATCH].split(BATCH)
        )
        yield from itertools.islice(batches, _steps(len(x), epochs))


def _steps(images: int, epochs: float) -> int:
    return max(1, math.ceil(epochs * (images // BATCH)))


def recalibrate_batch_norm(model: nn.Module, batches: Iterable[torch.Tensor], description: str) -> None:
    """Re-estimate every batch-norm's running statistics as the plain average over `batches`
    (train mode, no gradient), leaving the model in eval mode."""
    norms = [module for module in model.modules() if isinstance(module, nn.modules.batchnorm._BatchNorm)]
    momenta = [norm.momentum for norm in norms]
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None  # a cumulative average
    model.train()
    with torch.no_grad():
        for inputs in current_reporter().track(batches, description):
            model(inputs)
    for norm, momentum in zip(norms, momenta, strict=True):
        norm.momentum = momentum
    model.eval()


def held_out_accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Top-1 on (x, y) at 224×224, eval mode, in batches of 32."""
    model.eval()
    with torch.no_grad():
        predicted = torch.cat([model(digits_images(x[i : i + 32])).argmax(1) for i in range(0, len(x), 32)])
    return float((predicted == y).float().mean())


def train(
    split: tuple[torch.Tensor, ...],
    cycles: tuple[Cycle, ...] = CYCLES,
    recalibration_images: int = RECALIBRATION_IMAGES,
    seed: int = SEED,
) -> tuple[MobileNetV2, dict[str, Any]]:
    """Seeded end-to-end training (every cycle, each with its progress bar), then batch-norm
    statistics re-estimated at 224×224. Returns the model (eval mode) and its accuracy on the
    whole test split."""
    x_train, y_train, x_test, y_test = split
    torch.manual_seed(seed)
    model = MobileNetV2().to(memory_format=torch.channels_last)
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out")
        elif isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, 0, 0.01)
            nn.init.zeros_(module.bias)
    generator = torch.Generator().manual_seed(seed + 1)

    def loss(batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        return nn.functional.cross_entropy(model(batch[0]), batch[1], label_smoothing=0.1)

    model.train()
    for lr, stages in cycles:
        steps = sum(_steps(len(x_train), epochs) for _, epochs in stages)
        sides = "→".join(str(side) for side, _ in stages)
        fit(
            model.parameters(),
            loss,
            _batches(x_train, y_train, stages, generator),
            steps,
            lr,
            f"training mobilenet_v2 on digits at {sides} px ({steps} steps, once per machine)",
        )
    order = torch.randperm(len(x_train), generator=generator)[:recalibration_images]
    recalibrate_batch_norm(
        model,
        (digits_images(x_train[idx]) for idx in order.split(BATCH)),
        "mobilenet_v2: batch-norm statistics at 224×224",
    )
    facts = {
        "data": "scikit-learn digits, 8×8 upsampled to 3×224×224, stratified 80/20 split",
        "held_out_accuracy": held_out_accuracy(model, x_test, y_test),
        "held_out_images": len(y_test),
        "cycles": [[lr, [list(stage) for stage in stages]] for lr, stages in cycles],
        "recalibration_images": len(order),
        "params": sum(p.numel() for p in model.parameters()),
    }
    return model.to(memory_format=torch.contiguous_format), facts


def cache_key(split: tuple[torch.Tensor, ...]) -> str:
    """The weights cache key: this file, the digits and the data code."""
    return weights_key([Path(__file__), Path(digits_cnn.__file__)], digits_cnn.data_fingerprint(split))


def trained_model(split: tuple[torch.Tensor, ...]) -> tuple[MobileNetV2, Trained]:
    """The trained model, from the cache or trained now (keyed by this file, the digits and the data code)."""
    trained = cached_weights("mobilenet_v2", cache_key(split), lambda: train(split))
    model = MobileNetV2()
    model.load_state_dict(trained.state)
    return model.eval(), trained


def factory(eval_images: int = EVAL_IMAGES) -> ModelBundle:
    split = digits_cnn.load_split()
    x_train, y_train, x_test, y_test = split
    model, trained = trained_model(split)
    x_eval, y_eval = x_test[:eval_images], y_test[:eval_images]

    def calibration() -> Iterator[tuple[torch.Tensor]]:
        for i in range(0, 64):
            yield (digits_images(x_train[i : i + 1]).contiguous(),)

    def train_batches() -> Iterator[tuple[tuple[torch.Tensor], torch.Tensor]]:
        """Every training digit once, in batches of 32 at 224×224. Recovery after channel pruning
        needs them all, in batches big enough for batch-norm to train on their statistics (512 of
        them in batches of 8, batch-norm frozen, left a 50 %-pruned network at chance), at the size
        the network is scored at (distilled at 160 px it scored 93 % at 224 against 99 %)."""
        generator = torch.Generator().manual_seed(SEED + 2)
        order = torch.randperm(len(x_train), generator=generator)
        for start in range(0, len(x_train) - BATCH + 1, BATCH):
            idx = order[start : start + BATCH]
            yield (digits_images(x_train[idx]).contiguous(),), y_train[idx]

    return ModelBundle(
        module=model,
        example_inputs=(digits_images(x_eval[:1]).contiguous(),),
        calibration=calibration,
        eval_inputs=[(digits_images(x_eval[i : i + 1]).contiguous(),) for i in range(len(x_eval))],
        score=top1_scorer(y_eval),
        train_batches=train_batches,
        description=f"MobileNetV2 1.0, 224×224, trained on sklearn digits upsampled ({len(x_eval)} held-out images)",
        extra={"weights": str(trained.path), "held_out_accuracy_all": trained.meta.get("held_out_accuracy")},
    )
