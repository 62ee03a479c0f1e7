"""What a compressed model costs: parameters, multiply-accumulates and weight sparsity.

Counted on the eager module before quantization (quantization changes neither), with
torch.utils.flop_counter, which counts conv, linear, (b)mm and attention the same way for
any architecture: MACs = FLOPs / 2.
"""

from __future__ import annotations

import torch
from torch import nn

PRUNABLE = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)


def parameter_count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def mac_count(module: nn.Module, example_inputs: tuple[torch.Tensor, ...]) -> int:
    """Multiply-accumulates of one forward pass on `example_inputs`."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        module(*example_inputs)
    return int(counter.get_total_flops() // 2)


def prunable_weights(module: nn.Module) -> dict[str, torch.Tensor]:
    """Conv and linear weight tensors by qualified name (what pruning and sparsity cover)."""
    return {f"{name}.weight": m.weight for name, m in module.named_modules() if isinstance(m, PRUNABLE)}


def weight_sparsity(module: nn.Module) -> float:
    """Fraction of conv/linear weights that are exactly zero."""
    weights = list(prunable_weights(module).values())
    total = sum(w.numel() for w in weights)
    zeros = sum(int((w == 0).sum()) for w in weights)
    return zeros / total if total else 0.0


def model_stats(module: nn.Module, example_inputs: tuple[torch.Tensor, ...]) -> dict[str, float | int]:
    return {
        "params": parameter_count(module),
        "macs": mac_count(module, example_inputs),
        "sparsity": weight_sparsity(module),
    }
