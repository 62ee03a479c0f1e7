"""Grouped attention over the static cache: the same logits as transformers' own attention, and an
exported decode step that copies no part of the cache."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from pocketbench.models.hf_bundles import CausalLMWithCache

from tests.data import tiny_hf

CONTEXT = 48


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_hf.llama(tmp_path_factory.mktemp("hf") / "tiny-llama")  # 4 query heads share 2 KV heads


def cached(checkpoint: Path, attention: str | None) -> torch.nn.Module:
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(checkpoint, dtype=torch.float32).eval()
    module = CausalLMWithCache(model, CONTEXT)
    if attention is not None:  # back to one of transformers' own, after the wrapper chose grouped
        model.set_attn_implementation(attention)
    return module


@pytest.mark.parametrize("attention", ["sdpa", "eager"])
def test_grouped_attention_gives_transformers_logits_over_prefill_and_decode(checkpoint: Path, attention: str):
    ids = torch.randint(0, tiny_hf.LLAMA["vocab_size"], (1, CONTEXT), generator=torch.Generator().manual_seed(0))
    grouped, theirs = cached(checkpoint, None), cached(checkpoint, attention)
    with torch.no_grad():
        for module in (grouped, theirs):
            module.logits = [module(ids[:, :16], torch.arange(16))]  # prefill of 16, then 8 decode steps
            module.logits += [module(ids[:, p : p + 1], torch.tensor([p])) for p in range(16, 24)]
    for ours, reference in zip(grouped.logits, theirs.logits, strict=True):
        torch.testing.assert_close(ours, reference, rtol=1e-4, atol=1e-5)


def cache_copies(module: torch.nn.Module) -> list[str]:
    """The expand/repeat ops of an exported decode step whose output is as large as a layer's cache."""
    program = torch.export.export(module, (torch.tensor([[1]]), torch.tensor([5])), strict=True)
    c = tiny_hf.LLAMA
    layer_cache = c["num_key_value_heads"] * CONTEXT * c["hidden_size"] // c["num_attention_heads"]  # one K or V
    return [
        str(node.target)
        for node in program.graph.nodes
        if node.op == "call_function" and ("expand" in str(node.target) or "repeat" in str(node.target))
        and node.meta["val"].numel() >= layer_cache
    ]  # fmt: skip


def test_an_exported_decode_step_copies_no_part_of_the_cache(checkpoint: Path) -> None:
    assert cache_copies(cached(checkpoint, None)) == []
    # transformers' own attention repeats each layer's keys and values for the query heads
    assert len(cache_copies(cached(checkpoint, "sdpa"))) == 2 * tiny_hf.LLAMA["num_hidden_layers"]
