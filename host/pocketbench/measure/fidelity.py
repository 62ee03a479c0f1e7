"""How close a variant's outputs are to the fp32 model's, and whether that closeness means anything.

Pure functions over arrays, applied to the output sets the device wrote back.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from pocketbench.stats import sqnr_db


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


# Below this, outputs barely depend on the input. Measured on the built-ins' own eval inputs:
# 0.036 for a seeded random-weight MobileNetV2, 0.048 for a random-weight tiny_transformer,
# 0.23 (tiny_transformer), 2.2 (mobilenet_v2) and 0.91 (digits_cnn) trained; a random deep MLP
# 1e-8 (tests/test_trained_models.py).
INPUT_INDEPENDENT_BELOW = 0.1


def input_dependence(outputs: Sequence[np.ndarray]) -> float:
    """How much a model's outputs depend on its input: the variance of each output element across
    the eval inputs over the variance of the elements within one output (each averaged).

    An untrained deep network maps every input to nearly the same logits (≈ 0 here), so
    quantization noise is large against the differences between inputs and its SQNR and top-1
    agreement say little about a trained network's. NaN with fewer than two outputs.
    """
    if len(outputs) < 2:
        return float("nan")
    x = np.stack([np.asarray(o, dtype=np.float64).reshape(-1) for o in outputs])
    across, within = float(x.var(axis=0).mean()), float(x.var(axis=1).mean())
    if within == 0:
        return float("inf") if across > 0 else float("nan")
    return across / within


def untrained_fidelity_note(dependence: float, has_score: bool) -> str | None:
    """The label for fidelity figures of a model with no score whose outputs are nearly
    input-independent (None when its fidelity can be read as quality)."""
    if has_score or not dependence < INPUT_INDEPENDENT_BELOW:
        return None
    return (
        f"fidelity to an untrained network: its outputs barely depend on the input (variance across "
        f"inputs {100 * dependence:.2g}% of that within an output), so SQNR and top-1 agreement do not "
        "predict a trained model's accuracy loss"
    )
