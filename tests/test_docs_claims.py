"""Figures the README and docs quote come from benchmarks/RESULTS.md: each quoted figure is found
in the page and the measured one in RESULTS.md, so a benchmark run that changes a figure fails
here until the page says the new one (RESULTS.md is written by `just benchmark`, never by hand)."""

from __future__ import annotations

import re

import pytest

from tests.docs_examples import REPO

RESULTS = REPO / "benchmarks" / "RESULTS.md"

# Per page: what it says, and what RESULTS.md says that it comes from.
QUOTED: dict[str, list[tuple[str, str]]] = {
    "README.md": [
        ("mobilenet_v2 took 7.5 min on one core",
         "**451 s** (7.5 min)"),
    ],
    "docs/models.md": [
        ("7.5 min (451 s) on one thread",
         "**451 s** (7.5 min)"),
        ("98.6 % (360 images; the device scores the first 100: 98 %)",
         "accuracy **98.6 %**"),
        ("fp32 98 %, int8 99 % (+1), int8-per-tensor 99 % (+1), int8-meanstd 8 % (−90)",
         "| int8-meanstd | post-training, per-channel, ranges mean ± 2σ (the seed's rule; not in the paper) | 8.0%"),
        ("int8-qat 100 % (+2)",
         "| 100.0% (+2.0) |"),
        ("at most 4.9× its median channel's (2.2× in the median layer)",
         "2.2× the median channel's in the median layer, 4.9× in the worst"),
    ],
    "docs/farm.md": [
        ("took 0.55× the serial time",
         "Parallel / serial: **0.55**"),
        ("measured 0.26 % (1 % wander) and 0.92 % (1.5 %)",
         "| 1.0% | 760 | 2 | 0.26% | 40/40 |"),
        ("measured 0.26 % (1 % wander) and 0.92 % (1.5 %)",
         "| 1.5% | 760 | 7 | 0.92% | 40/40 |"),
    ],
    "docs/generative.md": [
        ("decode measured 0.25 ms/token here (about 4,000 tokens/s)",
         "| 3950 [3440–4761] | 0.253 /"),
        ("8da4w decoded 1.6× faster than fp32 at 0.17× the size",
         "decode 1.61×, size 0.17×"),
        ("the whole fp32 model (12.7 MB) fits",
         "| fp32 | ok | 12.74 MB |"),
        ("fits in this CPU's 32 MB L3 cache",
         "fits in this EPYC VM's 32 MB L3 cache"),
    ],
    "docs/huggingface.md": [
        ("tiny_llama (3 M parameters, 12.6 MB in fp32)",
         "fp32 decode reads 12.6 MB of weights"),
    ],
    "docs/first-phone.md": [
        ("17.5 MB for arm64-v8a (5.7 MB gzipped)",
         "| android-arm64 | 19 | 17.5 | 5.7 |"),
        ("20.3 MB for x86_64",
         "| android-x86_64 | 19 | 20.3 |"),
    ],
    "docs/reading-the-numbers.md": [
        ("1.76× faster than fp32 in the trace (5.53 → 3.15 ms)",
         "tiny_transformer: int8 is 1.76× faster than fp32 in the trace (5.53 → 3.15 ms)"),
        ("at 2 threads was 0.4–25.9 % in an interleaved check",
         "run-to-run CVs of 0.4–25.9 % at 2 threads"),
        ("(12–45 % in some whole runs)",
         "or 06:02 (12–45 %"),
        ("while at one thread it was 0.5–1.2 %",
         "and 0.5–1.2 % at 1 thread"),
    ],
}  # fmt: skip


def _flat(text: str) -> str:
    return " ".join(text.split())


CLAIMS = [(page, says, measured) for page, pairs in QUOTED.items() for says, measured in pairs]


@pytest.mark.parametrize(("page", "says", "measured"), CLAIMS, ids=[f"{p}:{s[:30]}" for p, s, _ in CLAIMS])
def test_a_quoted_figure_is_the_measured_one(page: str, says: str, measured: str) -> None:
    assert _flat(says) in _flat((REPO / page).read_text()), f"{page} no longer says {says!r}"
    assert _flat(measured) in _flat(RESULTS.read_text()), f"RESULTS.md no longer says {measured!r}: update {page}"


def _speedups(variant: str) -> list[float]:
    """The `variant` row's speedup over fp32 in each model's table of "Compression variants"."""
    section = RESULTS.read_text().split("<!-- compression:start -->")[1].split("<!-- compression:end -->")[0]
    rows = re.findall(rf"^\| {re.escape(variant)} \|.*?\| [\d.]+ \(([\d.]+)×\) \|", section, re.M)
    return [float(r) for r in rows]


@pytest.mark.parametrize("variant", ["int8", "int8-dynamic"])
def test_the_int8_speedup_range_is_the_compression_tables(variant: str) -> None:
    speedups = _speedups(variant)
    assert len(speedups) == 3, speedups  # digits_cnn, tiny_transformer, mobilenet_v2
    quoted = f"`{variant}` {'ran ' if variant == 'int8' else ''}{min(speedups):.1f}–{max(speedups):.1f}×"
    assert quoted in _flat((REPO / "docs" / "reading-the-numbers.md").read_text())
