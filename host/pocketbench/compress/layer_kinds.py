"""The layers of a source model that compression and lowering treat apart: recurrent layers
(exported unrolled, left in fp32 by the int8 quantizer), normalisations and embeddings.

Compression records them before quantizing; lowering (lower/delegation.py) uses them to explain
the ops left outside XNNPACK.
"""

from __future__ import annotations

import torch
from torch import nn

RECURRENT = (nn.RNNBase,)
RECURRENT_NAMES = {"RNN", "GRU", "LSTM"}
NORMS = (nn.LayerNorm, nn.GroupNorm, nn.modules.batchnorm._BatchNorm, nn.InstanceNorm1d, nn.InstanceNorm2d)
EMBEDDINGS = (nn.Embedding, nn.EmbeddingBag)


def layer_kinds(module: torch.nn.Module) -> dict[str, str]:
    """Recurrent, normalisation and embedding layers of the source model: name → class name."""
    kinds = RECURRENT + NORMS + EMBEDDINGS
    return {name: type(m).__name__ for name, m in module.named_modules() if isinstance(m, kinds)}


def unquantized_layers(module: torch.nn.Module) -> list[str]:
    """Layers with weights that the XNNPACK int8 quantizer leaves in fp32 — recurrent layers
    export as one `aten.gru`/`aten.lstm` op it does not annotate — as `gru (GRU, 74% of weights)`."""
    total = sum(p.numel() for p in module.parameters()) or 1
    found = []
    for name, layer in module.named_modules():
        if isinstance(layer, RECURRENT):
            share = sum(p.numel() for p in layer.parameters()) / total
            found.append(f"{name} ({type(layer).__name__}, {100 * share:.0f}% of weights)")
    return found
