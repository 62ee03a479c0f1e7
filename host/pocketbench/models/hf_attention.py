"""Grouped-query attention over a static KV cache that never copies the cache.

transformers' `sdpa` attention repeats every key/value head for the query heads that share it
(`repeat_kv`) whenever it is traced for export: the exported program then copies the whole cache,
all of its slots, G times per layer per decoded token (`expand_copy`, outside XNNPACK). For a
decoder whose weights are 4-bit that copy is as many bytes as the weights themselves, so it caps
what quantization can gain. Here the G query heads sharing a KV head are one batch of G·T rows
against that head's cache: two batched matmuls read the cache once and copy none of it.

Registered with transformers' attention interface under `GROUPED` (with its additive float mask);
`use_grouped_attention(model)` switches a loaded model to it.
"""

from __future__ import annotations

from typing import Any

import torch

GROUPED = "pocketbench_grouped"


def grouped_attention(
    module: torch.nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    dropout: float = 0.0,
    scaling: float | None = None,
    **_: Any,
) -> tuple[torch.Tensor, None]:
    """query [B, H, T, D], key/value [B, KV, S, D] (the whole cache), attention_mask additive
    [B or 1, 1, T, S] or None -> ([B, T, H, D], None), as transformers' attention functions return.
    Query head h reads KV head h // G (the order `repeat_kv` gives)."""
    batch, heads, t, d = query.shape
    kv, slots = key.shape[1], key.shape[2]
    group = heads // kv
    rows = query.reshape(batch * kv, group * t, d)  # head h = k·G + g: rows g·T + t of KV head k
    keys = key.reshape(batch * kv, slots, d)
    # [S, D] × [D, G·T] keeps the cache as the left operand, in its own layout: nothing of it is
    # transposed or copied; only the small score matrix is turned around.
    scores = torch.bmm(keys, rows.transpose(1, 2)).transpose(1, 2) * (scaling if scaling is not None else d**-0.5)
    if attention_mask is not None:
        mask = attention_mask[:, :, :, :slots]  # [B or 1, 1, T, S], shared by every head
        scores = (scores.view(batch, kv, group, t, slots) + mask.unsqueeze(1)).view(batch * kv, group * t, slots)
    out = torch.bmm(scores.softmax(dim=-1), value.reshape(batch * kv, slots, d))
    return out.view(batch, heads, t, d).transpose(1, 2).contiguous(), None


def use_grouped_attention(model: Any) -> None:
    """Switch a loaded transformers model to `grouped_attention` (registered once per process)."""
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface, eager_mask

    AttentionInterface.register(GROUPED, grouped_attention)
    AttentionMaskInterface.register(GROUPED, eager_mask)
    model.set_attn_implementation(GROUPED)
