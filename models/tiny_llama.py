"""Generative: Llama-style byte-level decoder (4×256, GQA, SwiGLU, RoPE, 512-token KV cache) trained on stdlib source.

The architecture, its training and the text live in `_llama.py` (its bytes key the cached
weights); this file hands the trained model to pocketbench as a GenerativeBundle: the held-out
windows for perplexity, a fixed stream of held-out bytes to prompt and teacher-force every
variant with, and training windows for calibration.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from pocketbench.models.registry import GenerativeBundle
from pocketbench_models._llama import CONFIG, SEED, load_text, trained_model
from pocketbench_models._stdlib_text import sample_windows

CALIBRATION_SEQ = 128


def factory() -> GenerativeBundle:
    text = load_text()
    model, trained = trained_model(text)
    _, held_out_files = text.corpus.split()
    stream = sample_windows(held_out_files, CONFIG.context, 1, torch.Generator().manual_seed(SEED + 5))[0]

    def calibration() -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for window in text.train[:64]:
            yield window[None, :CALIBRATION_SEQ], torch.arange(CALIBRATION_SEQ)

    return GenerativeBundle(
        module=model,
        calibration=calibration,
        context=CONFIG.context,
        eval_tokens=text.held_out,
        stream=stream,
        description="Llama-style byte-level decoder trained on the Python stdlib's source",
        extra={"weights": str(trained.path), "held_out_perplexity": trained.meta.get("held_out_perplexity")},
    )
