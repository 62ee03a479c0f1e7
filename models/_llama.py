"""Llama-style byte-level decoder (RMSNorm, RoPE, grouped-query attention, SwiGLU, KV cache) on stdlib source.

Generative: one `forward(tokens [1, T], positions [T]) -> logits [1, T, 256]` serves both
prefill (T = the prompt length) and decode (T = 1). The KV cache is a pair of registered buffers
per layer, written with `index_copy_` at `positions`; attention reads the whole cache through an
additive mask (cache slot j is visible to the token at position p iff j ≤ p: 0, else -inf), so
slots left over from an earlier sequence are never read and nothing needs resetting between
sequences. The query heads sharing a KV head attend as one batch, so the cache is never copied.

Why one dynamic-shape method, not a prefill and a decode method: ExecuTorch memory-plans mutable
buffers per method, so two methods would hold two caches and the decode method would not see what
prefill wrote. One method exported with T dynamic (1 … CONTEXT) keeps one cache.

Trained once per machine (seeded, cached by the stdlib's file list and this file) on byte windows
of the running Python's standard-library sources; held-out files give the perplexity text.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from pocketbench_models import _stdlib_text
from pocketbench_models._stdlib_text import StdlibCorpus, load_corpus, sample_windows
from pocketbench_models._trained import Trained, cached_weights, fit, weights_key
from torch import nn
from torch.nn import functional as F

SEED = 0
VOCAB = 256  # bytes


@dataclass(frozen=True)
class LlamaConfig:
    """Shape of the decoder; `context` is the KV cache length (the longest P + N)."""

    dim: int = 256
    layers: int = 4
    heads: int = 8
    kv_heads: int = 2
    ffn: int = 768
    context: int = 512
    vocab: int = VOCAB
    rope_base: float = 10000.0

    @property
    def head_dim(self) -> int:
        return self.dim // self.heads


CONFIG = LlamaConfig()
TRAIN_SEQ, BATCH, STEPS, LR = 128, 16, 100, 3e-3
EVAL_WINDOWS, EVAL_SEQ = 16, 256  # perplexity text: windows of held-out files


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


def rope_tables(config: LlamaConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin [context, head_dim / 2] for rotary positions."""
    half = config.head_dim // 2
    inv_freq = 1.0 / (config.rope_base ** (torch.arange(half, dtype=torch.float32) / half))
    angles = torch.outer(torch.arange(config.context, dtype=torch.float32), inv_freq)
    return angles.cos(), angles.sin()


def rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotary embedding (half-split) on [..., head_dim], cos/sin broadcast to [..., head_dim / 2]:
    [T, hd/2] for [batch, heads, T, hd], [T, 1, hd/2] for [batch, T, heads, hd]."""
    first, second = x.chunk(2, dim=-1)
    return torch.cat([first * cos - second * sin, first * sin + second * cos], dim=-1)


class Attention(nn.Module):
    """Grouped-query attention whose keys and values live in a cache of `context` slots."""

    def __init__(self, config: LlamaConfig) -> None:
        super().__init__()
        self.config = config
        hd = config.head_dim
        self.q = nn.Linear(config.dim, config.heads * hd, bias=False)
        self.k = nn.Linear(config.dim, config.kv_heads * hd, bias=False)
        self.v = nn.Linear(config.dim, config.kv_heads * hd, bias=False)
        self.o = nn.Linear(config.heads * hd, config.dim, bias=False)
        shape = (1, config.kv_heads, config.context, hd)
        self.register_buffer("k_cache", torch.zeros(shape), persistent=False)
        self.register_buffer("v_cache", torch.zeros(shape), persistent=False)

    def _project(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Rotated queries [B, T, heads, hd] (token-major: see _mix_cached), keys and values
        [B, kv_heads, T, hd]."""
        c, (batch, t, _) = self.config, x.shape
        q = self.q(x).view(batch, t, c.heads, c.head_dim)
        k = self.k(x).view(batch, t, c.kv_heads, c.head_dim).transpose(1, 2)
        v = self.v(x).view(batch, t, c.kv_heads, c.head_dim).transpose(1, 2)
        return rotate(q, cos.unsqueeze(1), sin.unsqueeze(1)), rotate(k, cos, sin), v

    def _mix(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """Causal attention of T tokens among themselves (training and reference logits)."""
        group = self.config.heads // self.config.kv_heads
        k, v = k.repeat_interleave(group, dim=1), v.repeat_interleave(group, dim=1)
        out = F.scaled_dot_product_attention(q.transpose(1, 2), k, v, is_causal=True)
        batch, _, t, _ = out.shape
        return self.o(out.transpose(1, 2).reshape(batch, t, self.config.dim))

    def _mix_cached(self, q: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        """Attention of T tokens over the whole cache, grouped: the G query heads sharing a KV
        head are one batch of G·T rows against it, so the cache is never repeated. Repeating it
        (`repeat_interleave`) copied all 512 slots G times per layer per step: `expand_copy`, 46 %
        of 8da4w's decode time in the profile (benchmarks/RESULTS.md). Written with 3-D `bmm`s
        over the one cached sequence (4-D matmuls decompose into copies of the cache) and from
        token-major queries (F.scaled_dot_product_attention and a head-major reshape leave
        torch.export a guard on T it cannot prove for every prompt length). `bias` [G·T, context]
        is 0 where a slot is visible and -inf where it is not."""
        c, (_, t, _, d) = self.config, q.shape
        group = c.heads // c.kv_heads
        keys, values = self.k_cache[0], self.v_cache[0]  # [kv, context, hd]: one sequence
        # [1, T, kv·G, hd] → [kv, G, T, hd] → each KV head's rows g·T + t
        rows = q.view(t, c.kv_heads, group, d).permute(1, 2, 0, 3).reshape(c.kv_heads, group * t, d)
        scores = torch.bmm(rows, keys.transpose(1, 2)) * d**-0.5 + bias
        out = torch.bmm(scores.softmax(dim=-1), values).view(c.kv_heads, group, t, d)
        return self.o(out.permute(2, 0, 1, 3).reshape(1, t, c.dim))

    def forward(
        self, x: torch.Tensor, positions: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, bias: torch.Tensor
    ) -> torch.Tensor:
        q, k, v = self._project(x, cos, sin)
        self.k_cache.index_copy_(2, positions, k)
        self.v_cache.index_copy_(2, positions, v)
        return self._mix_cached(q, bias)

    def forward_uncached(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        q, k, v = self._project(x, cos, sin)
        return self._mix(q, k, v)


class Block(nn.Module):
    def __init__(self, config: LlamaConfig) -> None:
        super().__init__()
        self.attention_norm = RMSNorm(config.dim)
        self.attention = Attention(config)
        self.ffn_norm = RMSNorm(config.dim)
        self.gate = nn.Linear(config.dim, config.ffn, bias=False)
        self.up = nn.Linear(config.dim, config.ffn, bias=False)
        self.down = nn.Linear(config.ffn, config.dim, bias=False)

    def _ffn(self, x: torch.Tensor) -> torch.Tensor:
        h = self.ffn_norm(x)
        return x + self.down(F.silu(self.gate(h)) * self.up(h))

    def forward(
        self, x: torch.Tensor, positions: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, bias: torch.Tensor
    ) -> torch.Tensor:
        return self._ffn(x + self.attention(self.attention_norm(x), positions, cos, sin, bias))

    def forward_uncached(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        return self._ffn(x + self.attention.forward_uncached(self.attention_norm(x), cos, sin))


class TinyLlama(nn.Module):
    """`forward(tokens, positions)`: logits for every given token, its keys/values kept in the cache."""

    def __init__(self, config: LlamaConfig = CONFIG) -> None:
        super().__init__()
        self.config = config
        self.embed = nn.Embedding(config.vocab, config.dim)
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.layers))
        self.norm = RMSNorm(config.dim)
        self.head = nn.Linear(config.dim, config.vocab, bias=False)
        cos, sin = rope_tables(config)
        self.register_buffer("rope_cos", cos, persistent=False)
        self.register_buffer("rope_sin", sin, persistent=False)
        self.register_buffer("slots", torch.arange(config.context), persistent=False)

    def forward(self, tokens: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        cos, sin = self.rope_cos[positions], self.rope_sin[positions]
        visible = self.slots.unsqueeze(0) <= positions.unsqueeze(
            1
        )  # [T, context]: slot j visible at position p iff j ≤ p
        blocked = torch.full(visible.shape, float("-inf")).masked_fill(visible, 0.0)
        bias = blocked.repeat(self.config.heads // self.config.kv_heads, 1)  # once for every layer: [G·T, context]
        x = self.embed(tokens)
        for block in self.blocks:
            x = block(x, positions, cos, sin, bias)
        return self.head(self.norm(x))

    def forward_uncached(self, tokens: torch.Tensor) -> torch.Tensor:
        """Causal forward over positions 0 … T-1 without the cache: training and reference logits."""
        t = tokens.shape[1]
        cos, sin = self.rope_cos[:t], self.rope_sin[:t]
        x = self.embed(tokens)
        for block in self.blocks:
            x = block.forward_uncached(x, cos, sin)
        return self.head(self.norm(x))


@dataclass(frozen=True)
class ByteText:
    """Training windows and the held-out perplexity text (byte tokens) of one stdlib."""

    train: torch.Tensor  # [n, TRAIN_SEQ + 1]
    held_out: torch.Tensor  # [EVAL_WINDOWS, EVAL_SEQ + 1]: windows of held-out files
    held_out_files: list[str]
    corpus: StdlibCorpus


def load_text(corpus: StdlibCorpus | None = None) -> ByteText:
    corpus = corpus or load_corpus()
    train_files, held_out = corpus.split()
    train = sample_windows(train_files, TRAIN_SEQ + 1, BATCH * STEPS, torch.Generator().manual_seed(SEED + 1))
    evaluation = sample_windows(held_out, EVAL_SEQ + 1, EVAL_WINDOWS, torch.Generator().manual_seed(SEED + 2))
    return ByteText(train, evaluation, [f.path for f in held_out], corpus)


def perplexity(logits: torch.Tensor, targets: torch.Tensor) -> float:
    """exp(mean cross-entropy) of next-byte logits [..., V] against targets [...]."""
    loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), targets.reshape(-1))
    return float(torch.exp(loss))


def eager_perplexity(model: TinyLlama, windows: torch.Tensor) -> float:
    with torch.no_grad():
        return perplexity(model.forward_uncached(windows[:, :-1]), windows[:, 1:])


def train(text: ByteText, config: LlamaConfig = CONFIG, steps: int = STEPS) -> tuple[TinyLlama, dict[str, Any]]:
    """Seeded next-byte training from scratch; returns the model (eval mode) and its held-out perplexity."""
    torch.manual_seed(SEED)
    model = TinyLlama(config).train()

    def batches() -> Iterator[torch.Tensor]:
        for start in itertools.count(0, BATCH):
            yield text.train[start % len(text.train) : start % len(text.train) + BATCH]

    def loss(batch: torch.Tensor) -> torch.Tensor:
        logits = model.forward_uncached(batch[:, :-1])
        return F.cross_entropy(logits.reshape(-1, config.vocab), batch[:, 1:].reshape(-1))

    fit(
        model.parameters(),
        loss,
        batches(),
        steps,
        LR,
        f"training tiny_llama on stdlib bytes ({steps} steps, once per machine)",
    )
    model.eval()
    manifest = text.corpus.manifest()
    facts = {
        "data": f"byte windows of Python {manifest['python']} stdlib sources, held out by file",
        "params": sum(p.numel() for p in model.parameters()),
        "held_out_perplexity": eager_perplexity(model, text.held_out),
        "held_out_bytes": int(text.held_out[:, 1:].numel()),
        "held_out_files": text.held_out_files,
        "train_steps": steps,
        "train_tokens": steps * BATCH * TRAIN_SEQ,
        "corpus": manifest,
    }
    return model, facts


def trained_model(text: ByteText) -> tuple[TinyLlama, Trained]:
    """The trained model, from the cache or trained now (keyed by this file and the stdlib files)."""
    sources = [Path(__file__), Path(_stdlib_text.__file__)]
    trained = cached_weights("tiny_llama", weights_key(sources, text.corpus.fingerprint), lambda: train(text))
    model = TinyLlama()
    model.load_state_dict(trained.state)
    return model.eval(), trained
