"""Speed only: random-initialised ~100 M-parameter Llama (HF checkpoint made here), fp32 decode bandwidth-bound.

Its weights are random, so its rows carry no perplexity: it exists to show what 4-bit weights do
to a decode that reads ~400 MB of fp32 weights per token (far beyond any desktop L3 cache and
like a phone's decode of a 1 B model): 12 layers of width 768 (12 query heads, 4 KV heads, SwiGLU
2048) and an untied 32 000-token output layer, 100 M parameters read per decoded token (125 M
with the embedding table, of which each token reads one row). The checkpoint is written once per
machine to the cache (`save_pretrained`, seeded) and measured through the `hf:` path: transformers'
static-cache ExecuTorch module, a KV cache of CONTEXT slots (llama-bench's pp512 + tg128).
`small()` is the same recipe at 1/40 of the size, for checking the benchmark and tests quickly.
"""

from __future__ import annotations

import hashlib
import json
from importlib import metadata
from typing import Any

from pocketbench.models.hf_bundles import causal_lm
from pocketbench.models.registry import GenerativeBundle, ModelData
from pocketbench.paths import cache_dir
from pocketbench_models._hf_checkpoint import save_llama

CONTEXT = 640  # pp512 + tg128
CONFIG: dict[str, Any] = {
    "vocab_size": 32_000, "hidden_size": 768, "intermediate_size": 2048, "num_hidden_layers": 12,
    "num_attention_heads": 12, "num_key_value_heads": 4, "max_position_embeddings": 2048,
    "tie_word_embeddings": False,
}  # fmt: skip
SMALL: dict[str, Any] = {**CONFIG, "vocab_size": 4096, "hidden_size": 128, "intermediate_size": 384,
                         "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2}  # fmt: skip


def factory() -> GenerativeBundle:
    return _bundle("llama_speed", CONFIG)


def small() -> GenerativeBundle:
    return _bundle("llama_speed_small", SMALL)


def _bundle(name: str, config: dict[str, Any]) -> GenerativeBundle:
    key = hashlib.sha256(json.dumps([config, metadata.version("transformers")], sort_keys=True).encode())
    folder = save_llama(cache_dir() / "checkpoints" / f"{name}-{key.hexdigest()[:12]}", **config)
    bundle = causal_lm(name, str(folder), ModelData(context=CONTEXT), speed_only=True)
    bundle.description = f"random-initialised Llama, {bundle.extra['params'] / 1e6:.0f} M parameters (speed only)"
    return bundle
