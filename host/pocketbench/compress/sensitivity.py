"""Per-layer quantization error: each conv/linear layer's int8 output against its fp32 output.

Each layer is judged on its own: it gets the fp32 model's real input, quantized (affine, per
tensor, min/max) and its weights quantized (symmetric, per channel or per tensor), and the SQNR
of what it computes is compared with the fp32 output. Errors of earlier layers do not leak in,
so the ranking says which layers are sensitive, not merely which come last.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn
from torch.nn import functional as F

from pocketbench.compress.cost import PRUNABLE
from pocketbench.compress.observers import fake_quantize, qparams
from pocketbench.stats import sqnr_db


def _quantized_output(
    layer: nn.Conv1d | nn.Conv2d | nn.Conv3d | nn.Linear, x: torch.Tensor, per_channel: bool
) -> torch.Tensor:
    lo, hi = x.min().reshape(1), x.max().reshape(1)
    xq = fake_quantize(x, *qparams(lo, hi, -128, 127, symmetric=False), -128, 127)
    w = layer.weight.detach()
    if per_channel:
        flat = w.reshape(w.shape[0], -1)
        w_lo, w_hi = flat.min(dim=1).values, flat.max(dim=1).values
    else:
        w_lo, w_hi = w.min().reshape(1), w.max().reshape(1)
    wq = fake_quantize(w, *qparams(w_lo, w_hi, -127, 127, symmetric=True), -127, 127)
    if isinstance(layer, nn.Linear):
        return F.linear(xq, wq, layer.bias)
    return layer._conv_forward(xq, wq, layer.bias)


def layer_sqnr(module: nn.Module, batches: Sequence[tuple[torch.Tensor, ...]], per_channel: bool) -> dict[str, float]:
    """SQNR in dB of every conv/linear layer's int8 output vs fp32, by qualified name."""
    layers = {name: m for name, m in module.named_modules() if isinstance(m, PRUNABLE)}
    captured: dict[str, list[tuple[torch.Tensor, torch.Tensor]]] = {name: [] for name in layers}

    def hook(name: str) -> Callable[[nn.Module, tuple[torch.Tensor, ...], torch.Tensor], None]:
        def record(_: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
            captured[name].append((inputs[0].detach(), output.detach()))

        return record

    handles = [m.register_forward_hook(hook(name)) for name, m in layers.items()]
    try:
        with torch.no_grad():
            for batch in batches:
                module(*batch)
    finally:
        for handle in handles:
            handle.remove()
    result = {}
    with torch.no_grad():
        for name, pairs in captured.items():
            if not pairs:
                continue  # a layer the forward pass never used
            x = torch.cat([p[0] for p in pairs])
            y = torch.cat([p[1] for p in pairs]).numpy()
            result[name] = round(sqnr_db(y, _quantized_output(layers[name], x, per_channel).numpy()), 2)
    return result


def worst(sqnr: dict[str, float], count: int) -> list[str]:
    """The `count` layers with the lowest SQNR (most damaged by int8)."""
    return sorted(sqnr, key=lambda name: (sqnr[name], name))[:count]
