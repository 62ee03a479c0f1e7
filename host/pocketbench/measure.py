"""Turn raw readings into figures: latency summaries and fidelity against the fp32 model.

Pure functions over numbers and arrays; the device and the runner never compute statistics.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def latency_summary(iterations_ns: Sequence[int]) -> dict[str, float | None]:
    """p50/p90/p99/mean/std/min/max in ms over the timed iterations."""
    keys = ("p50", "p90", "p99", "mean", "std", "min", "max")
    if len(iterations_ns) == 0:
        return {f"latency_{k}_ms": None for k in keys}
    ms = np.asarray(iterations_ns, dtype=np.float64) / 1e6
    p50, p90, p99 = np.percentile(ms, [50, 90, 99])
    values = (p50, p90, p99, ms.mean(), ms.std(ddof=1) if len(ms) > 1 else 0.0, ms.min(), ms.max())
    return {f"latency_{k}_ms": float(v) for k, v in zip(keys, values, strict=True)}


def sqnr_db(reference: np.ndarray, candidate: np.ndarray) -> float:
    """Signal-to-quantization-noise ratio in dB (inf when identical)."""
    reference = reference.astype(np.float64)
    noise = np.sum((reference - candidate.astype(np.float64)) ** 2)
    signal = np.sum(reference**2)
    if noise == 0:
        return float("inf")
    if signal == 0:
        return float("-inf")
    return float(10 * np.log10(signal / noise))


def fidelity(reference: Sequence[np.ndarray], candidate: Sequence[np.ndarray]) -> dict[str, float]:
    """Compare per-sample outputs (first output of each set) against the fp32 eager model.

    SQNR is over all samples pooled; top-1 agreement compares each sample's argmax.
    """
    if len(reference) != len(candidate) or not reference:
        raise ValueError(f"fidelity needs matching non-empty outputs ({len(reference)} vs {len(candidate)})")
    ref = np.stack([np.asarray(r, dtype=np.float64).reshape(-1) for r in reference])
    out = np.stack([np.asarray(c, dtype=np.float64).reshape(-1) for c in candidate])
    if ref.shape != out.shape:
        raise ValueError(f"output shapes differ: fp32 {ref.shape} vs variant {out.shape}")
    return {
        "max_abs_error": float(np.max(np.abs(ref - out))),
        "sqnr_db": sqnr_db(ref, out),
        "top1_agreement": float(np.mean(ref.argmax(axis=1) == out.argmax(axis=1))),
    }
