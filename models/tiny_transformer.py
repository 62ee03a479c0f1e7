"""Small transformer encoder: 4 layers, d=256, 4 heads, 128 tokens, mean-pooled 10-way head, seeded."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import torch
from pocketbench.registry import ModelBundle
from torch import nn

SEED = 0
VOCAB, SEQ, DIM, HEADS, LAYERS, FFN, CLASSES = 1000, 128, 256, 4, 4, 1024, 10


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


def token_batches(count: int, seed: int) -> Callable[[], Iterator[tuple[torch.Tensor]]]:
    def batches() -> Iterator[tuple[torch.Tensor]]:
        generator = torch.Generator().manual_seed(seed)
        for _ in range(count):
            yield (torch.randint(0, VOCAB, (1, SEQ), generator=generator),)

    return batches


def factory() -> ModelBundle:
    torch.manual_seed(SEED)
    eval_inputs = list(token_batches(8, SEED + 2)())
    return ModelBundle(
        module=TinyTransformer().eval(),
        example_inputs=eval_inputs[0],
        calibration=token_batches(16, SEED + 1),
        eval_inputs=eval_inputs,
        description="transformer encoder, 4×256, 128 tokens, random seeded weights (fidelity only)",
    )
