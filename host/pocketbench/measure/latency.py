"""Latency figures from raw per-call timings: pure, so the device and runner never compute statistics."""

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
