"""Generative cells: the token stream a runner is prompted with, the fp32 reference, and the
columns of a generative row (time to first token, prefill and decode tokens/s with CIs,
perplexity and its change, greedy-token agreement with fp32).

Every variant is prompted with the same P tokens and teacher-forced through the same N tokens
(`--generate P,N --teacher-forced`), so every variant decodes identical token streams and its
argmax at each step is comparable with fp32's on the same context. Perplexity is computed from
the variant's own `.pte` on this host's ExecuTorch runtime over the bundle's held-out windows
(one prefill per window): the same program the device runs, not the eager model.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pocketbench import stats
from pocketbench.errors import PocketbenchError
from pocketbench.measure.settings import ProtocolSettings
from pocketbench.models.registry import GenerativeBundle
from pocketbench.runner import tensorfile
from pocketbench.runner.report import RunnerReport

PROMPT_TOKENS, DECODE_TOKENS = ProtocolSettings.prompt_tokens, ProtocolSettings.decode_tokens


@dataclass(frozen=True)
class GenerationReference:
    """What every variant of one generative model is compared with."""

    prompt_tokens: int
    decode_tokens: int
    fp32_ids: list[int]  # the eager fp32 model's argmax after the prompt and after each forced token
    fp32_perplexity: float | None  # None for a speed-only model (random weights: no perplexity to show)


def speed_only(bundle: GenerativeBundle) -> bool:
    """A model measured for speed alone (random weights, e.g. llama_speed): its rows carry no perplexity."""
    return bool(bundle.extra.get("speed_only"))


def perplexity_from_logits(logits: Sequence[np.ndarray], windows: np.ndarray) -> float:
    """exp(mean next-token NLL): logits[i] [1, L-1, V] predicting windows[i, 1:]."""
    total, count = 0.0, 0
    for window_logits, window in zip(logits, windows, strict=True):
        z = np.asarray(window_logits, dtype=np.float64).reshape(-1, window_logits.shape[-1])
        z = z - z.max(axis=1, keepdims=True)
        log_probs = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
        targets = window[1:]
        total -= float(log_probs[np.arange(len(targets)), targets].sum())
        count += len(targets)
    return float(np.exp(total / count))


def reference(bundle: GenerativeBundle, prompt_tokens: int, decode_tokens: int) -> GenerationReference:
    """The fp32 eager model's teacher-forced argmax ids over the stream and its perplexity."""
    import torch

    stream = bundle.stream[: prompt_tokens + decode_tokens].long()
    windows = bundle.eval_tokens.long()
    with torch.no_grad():
        ids = []
        if prompt_tokens + decode_tokens <= bundle.context:
            logits = bundle.module(stream[None, :prompt_tokens], torch.arange(prompt_tokens))
            ids.append(int(logits[0, -1].argmax()))
            for step in range(decode_tokens):
                position = prompt_tokens + step
                logits = bundle.module(stream[None, position : position + 1], torch.tensor([position]))
                ids.append(int(logits[0, -1].argmax()))
        if speed_only(bundle):
            return GenerationReference(prompt_tokens, decode_tokens, ids, None)
        positions = torch.arange(windows.shape[1] - 1)
        logits = [bundle.module(w[None, :-1], positions).numpy() for w in windows]
    return GenerationReference(prompt_tokens, decode_tokens, ids, perplexity_from_logits(logits, windows.numpy()))


def write_stream(bundle: GenerativeBundle, path: Path) -> Path:
    """The token stream as the runner's inputs file (one set, one int64 tensor)."""
    tensorfile.write(path, [[bundle.stream.long().numpy()]])
    return path


def pte_perplexity(pte: Path, windows: np.ndarray) -> float:
    """Perplexity of the `.pte` on the held-out windows, one prefill per window (ExecuTorch's
    Python runtime on this host)."""
    import torch
    from executorch.runtime import Runtime

    program = Runtime.get().load_program(pte)  # kept alive while its method runs
    method = program.load_method("forward")
    if method is None:
        raise PocketbenchError(f"{pte} has no method forward")
    positions = torch.arange(windows.shape[1] - 1)
    logits = [method.execute([torch.from_numpy(w[None, :-1]).long(), positions])[0].numpy() for w in windows]
    return perplexity_from_logits(logits, windows)


def timing_columns(reports: Sequence[RunnerReport], latency: dict[str, Any]) -> dict[str, Any]:
    """TTFT and prefill tokens/s (median over every timed prefill, CI over tokens and processes),
    decode tokens/s from the decode ms/token median and its CI (`latency` = latency_columns)."""
    generations = [r.raw.get("generation") or {} for r in reports]
    groups = [[ns / 1e6 for ns in g.get("prefill_ns", [])] for g in generations]
    groups = [g for g in groups if g]
    prompt = int(generations[0].get("prompt_tokens", 0)) if generations else 0
    columns: dict[str, Any] = {
        "kind": "generative",
        "prompt_tokens": prompt,
        "decode_tokens": int(generations[0].get("decode_tokens", 0)) if generations else 0,
        "context_tokens": int(generations[0].get("context", 0)) if generations else 0,
        "decode_ms_p50": latency.get("latency_p50_ms"),
        "decode_ms_p90": latency.get("latency_p90_ms"),
    }
    if groups:
        # The percentile bootstrap alone: a handful of prefills with one outlier would give the
        # t-interval floor of stats.summarize a negative low end.
        median = float(np.median([v for g in groups for v in g]))
        low, high = stats.median_ci(groups)
        columns.update(ttft_ms=median, ttft_ci_low_ms=low, ttft_ci_high_ms=high)
        columns.update(
            prefill_tok_s=_rate(prompt, median),
            prefill_tok_s_ci_low=_rate(prompt, high),
            prefill_tok_s_ci_high=_rate(prompt, low),
        )
    columns.update(
        decode_tok_s=_rate(1, latency.get("latency_p50_ms")),
        decode_tok_s_ci_low=_rate(1, latency.get("latency_p50_ci_high_ms")),
        decode_tok_s_ci_high=_rate(1, latency.get("latency_p50_ci_low_ms")),
    )
    columns.update(per_generation_rates(generations, prompt))
    return columns


def per_generation_rates(generations: Sequence[dict[str, Any]], prompt: int) -> dict[str, Any]:
    """llama-bench's figures: each timed generation's prompt tokens/s (P / its prefill time, its
    `pp` test) and decode tokens/s (N / the sum of its decode steps, its `tg` test), as mean ± sample
    sd over every generation of every runner process (llama-bench: over its `-r` repetitions)."""
    prefill = [prompt * 1e9 / ns for g in generations for ns in g.get("prefill_ns", []) if ns > 0]
    steps_each = [steps for g in generations for steps in g.get("decode_ns", []) if steps and sum(steps) > 0]
    decode = [len(steps) * 1e9 / sum(steps) for steps in steps_each]
    columns: dict[str, Any] = {"generations": len(prefill)}
    for name, rates in (("prefill", prefill), ("decode", decode)):
        if rates:
            columns[f"{name}_tok_s_mean"] = float(np.mean(rates))
            columns[f"{name}_tok_s_sd"] = float(np.std(rates, ddof=1)) if len(rates) > 1 else None
    return columns


def _rate(tokens: int, ms: float | None) -> float | None:
    """Tokens per second; None for no time or a CI bound at or below 0 ms (the t-interval floor of
    two disagreeing processes can reach it): that side of the rate's CI is unbounded."""
    return tokens * 1000.0 / ms if ms is not None and ms > 0 else None


def quality_columns(
    ref: GenerationReference, bundle: GenerativeBundle, pte: Path, reports: Sequence[RunnerReport]
) -> dict[str, Any]:
    """Perplexity of the `.pte` and its change vs fp32 eager (none for a speed-only model);
    agreement of the device's ids with fp32's."""
    columns: dict[str, Any] = {}
    if ref.fp32_perplexity is not None:
        ppl = pte_perplexity(pte, bundle.eval_tokens.long().numpy())
        columns.update(
            perplexity=ppl,
            perplexity_fp32=ref.fp32_perplexity,
            perplexity_delta_pct=100.0 * (ppl / ref.fp32_perplexity - 1.0),
        )
    ids = (reports[0].raw.get("generation") or {}).get("generated_ids") or []
    if ids and len(ids) == len(ref.fp32_ids):
        columns["greedy_agreement"] = float(np.mean(np.asarray(ids) == np.asarray(ref.fp32_ids)))
        columns["generated_ids"] = [int(i) for i in ids]
    return columns
