"""A user model with random weights and no score: a deep MLP whose outputs barely depend on its
input (each default-initialised layer shrinks the signal, the biases remain)."""

import torch
from pocketbench.models.registry import ModelBundle
from torch import nn


def factory() -> ModelBundle:
    torch.manual_seed(0)
    layers: list[nn.Module] = []
    for _ in range(12):
        layers += [nn.Linear(64, 64), nn.ReLU()]
    model = nn.Sequential(*layers, nn.Linear(64, 10)).eval()
    inputs = [(torch.randn(1, 64, generator=torch.Generator().manual_seed(i)),) for i in range(8)]
    return ModelBundle(module=model, example_inputs=inputs[0], calibration=lambda: inputs, eval_inputs=inputs)
