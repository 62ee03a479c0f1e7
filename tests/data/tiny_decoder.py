"""A seeded random-weight tiny Llama-style decoder as a user's generative factory (tests)."""

from __future__ import annotations

import torch
from pocketbench.models.registry import GenerativeBundle
from pocketbench_models._llama import LlamaConfig, TinyLlama

CONFIG = LlamaConfig(dim=64, layers=2, heads=4, kv_heads=2, ffn=128, context=64)


def factory() -> GenerativeBundle:
    torch.manual_seed(0)
    model = TinyLlama(CONFIG).eval()
    generator = torch.Generator().manual_seed(1)
    text = torch.randint(0, 256, (4, 33), generator=generator)
    return GenerativeBundle(
        module=model,
        calibration=lambda: [(text[i : i + 1, :16], torch.arange(16)) for i in range(4)],
        context=CONFIG.context,
        eval_tokens=text,
        stream=torch.randint(0, 256, (CONFIG.context,), generator=generator),
        description="tiny random-weight decoder",
    )


def wrong_signature() -> GenerativeBundle:
    """A decoder whose forward takes only tokens: the contract is broken."""
    bundle = factory()

    class TokensOnly(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inner = bundle.module

        def forward(self, tokens: torch.Tensor) -> torch.Tensor:
            return self.inner(tokens, torch.arange(tokens.shape[1]))

    bundle.module = TokensOnly()
    return bundle
