"""The hand-written recipes of the compression table (benchmarks/compression_table.py measures
them), per built-in model: what a search is compared with, so its claims are against the best a
person wrote by hand, not against fp32 alone."""

from __future__ import annotations

COMMON = ["fp32", "int8", "int8-dynamic", "int8-meanstd", "int8-meanstd-auto", "int8-qat", "w4"]
# Pruned without training (a table note says so and names the recovery), then recovered.
PRUNING = ["sparse50", "sparse50+finetune", "prune50", "prune50+distill", "prune50+distill+int8"]
COMPRESSION_TABLE: dict[str, list[str]] = {
    # The observers side by side on the one model with real labels, and every pruning flavour.
    "digits_cnn": [
        *COMMON[:3],
        "int8-per-tensor",
        "int8-ma",
        "int8-hist",
        "int8-pct",
        *COMMON[3:5],
        "int8-mixed",
        *COMMON[5:],
        "sparse50-grad",
        "prune50-uniform+distill",
        *PRUNING,
    ],
    "tiny_transformer": [*COMMON, "int8-mixed", *PRUNING],
    "mobilenet_v2": [*COMMON, *PRUNING],
}


def hand_written(model: str) -> list[str]:
    """The compression table's recipes for `model` (a model outside the table: the common ones
    and the pruning ones)."""
    return list(COMPRESSION_TABLE.get(model, [*COMMON, *PRUNING]))
