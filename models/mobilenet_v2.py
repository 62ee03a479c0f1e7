"""MobileNetV2 (written here, no torchvision): 224×224 RGB, 1000 classes, ~3.5 M params, seeded weights."""

from __future__ import annotations

import torch
from pocketbench.registry import ModelBundle
from pocketbench_models._data import random_batches
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


def _seeded_model() -> MobileNetV2:
    """Seeded Kaiming weights, then batch-norm statistics gathered on random images so the
    activations have realistic ranges (quantization behaves as on a trained network)."""
    torch.manual_seed(SEED)
    model = MobileNetV2()
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out")
        elif isinstance(module, nn.BatchNorm2d):
            module.momentum = None  # cumulative average over the statistics batches
    model.train()
    with torch.no_grad():
        for (batch,) in random_batches((8, *INPUT_SHAPE[1:]), 4, SEED + 7)():
            model(batch)
    return model.eval()


def factory() -> ModelBundle:
    calibration = random_batches(INPUT_SHAPE, 16, SEED + 1)
    eval_inputs = list(random_batches(INPUT_SHAPE, 8, SEED + 2)())
    return ModelBundle(
        module=_seeded_model(),
        example_inputs=eval_inputs[0],
        calibration=calibration,
        eval_inputs=eval_inputs,
        description="MobileNetV2 1.0, 224×224, random seeded weights (fidelity only, no labels)",
    )
