"""A Hugging Face checkpoint loaded as the bundle the rest of pocketbench measures.

A causal language model becomes a `GenerativeBundle`, the same thing tiny_llama is: transformers'
own ExecuTorch wrapper (`TorchExportableModuleWithStaticCache`, a static KV cache registered as
buffers, `forward(input_ids, cache_position)`) is the module, so one dynamic-T method serves
prefill and decode over one cache and the generative path measures it unchanged. Its tokenizer
turns the user's text (`--text FILE`, else held-out Python stdlib sources) into the prompt stream
and the perplexity windows. An image classifier becomes a `ModelBundle` whose module returns the
logits; its image processor prepares `--images DIR` (one folder per label, ImageNet style) for
top-1 accuracy, or seeded noise images when no folder is given (then no accuracy is claimed).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import torch

from pocketbench.errors import PocketbenchError, first_line, shown
from pocketbench.models.spec import GenerativeBundle, ModelBundle, ModelData

PERPLEXITY_WINDOWS, WINDOW_TOKENS = 8, 256  # held-out windows: one prefill of ≤ 256 tokens each
CALIBRATION_TOKENS = 128
TEXT_MAX_BYTES = 8 << 20  # read at most this much of --text (the windows need far less)
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".gif"}
IMAGES_MAX = 512  # images scored at most (sorted by label, then file name)
NOISE_IMAGES = 8


def _pretrained(reference: str, loader: Any, location: str, **kwargs: Any) -> Any:
    from transformers.utils import logging

    logging.disable_progress_bar()  # pocketbench's own reporter shows what is loading
    try:
        return loader.from_pretrained(location, **kwargs)
    except Exception as exc:
        raise PocketbenchError(
            f"model {shown(reference)}: loading {loader.__name__} failed: {first_line(exc)}"
        ) from exc


def causal_lm(reference: str, location: str, data: ModelData, *, speed_only: bool = False) -> GenerativeBundle:
    """A decoder with a static KV cache of `data.context` slots, prompted and scored with the tokenizer's ids."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = _pretrained(reference, AutoModelForCausalLM, location, dtype=torch.float32).eval()
    limit = getattr(model.config, "max_position_embeddings", None)
    if limit is not None and data.context > limit:
        raise PocketbenchError(
            f"model {shown(reference)}: prompt + decode tokens = {data.context} is over its "
            f"max_position_embeddings {limit}; lower --prompt-tokens or --decode-tokens"
        )
    tokenizer = _pretrained(reference, AutoTokenizer, location)
    ids = _token_ids(reference, tokenizer, data)
    window = min(WINDOW_TOKENS, data.context) + 1
    if len(ids) < max(data.context, window):
        source = f"--text {data.text}" if data.text else "the default text"
        raise PocketbenchError(
            f"model {shown(reference)}: {source} is {len(ids)} tokens; the prompt + decode tokens need "
            f"{max(data.context, window)}: give a longer --text"
        )
    windows = [ids[i : i + window] for i in range(0, len(ids) - window + 1, window)][:PERPLEXITY_WINDOWS]
    module = CausalLMWithCache(model, data.context)
    tokens = torch.tensor(ids, dtype=torch.long)

    def calibration() -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        n = min(CALIBRATION_TOKENS, data.context)
        for start in range(0, len(ids) - n + 1, n):
            yield tokens[None, start : start + n], torch.arange(n)

    return GenerativeBundle(
        module=module,
        calibration=calibration,
        context=data.context,
        eval_tokens=torch.tensor(windows, dtype=torch.long),
        stream=tokens[: data.context],
        description=f"{type(model).__name__} from {location}",
        extra={"checkpoint": location, "speed_only": speed_only, "params": _params(model)},
        export_strict=True,
    )


def _params(model: Any) -> int:
    return int(sum(p.numel() for p in model.parameters()))


def _token_ids(reference: str, tokenizer: Any, data: ModelData) -> list[int]:
    """The ids of the user's text, else of held-out stdlib source files (the text tiny_llama never trains on)."""
    if data.text is not None:
        try:
            with data.text.open("rb") as handle:
                text = handle.read(TEXT_MAX_BYTES).decode("utf-8", errors="replace")
        except OSError as exc:
            raise PocketbenchError(f"--text {data.text}: cannot read it: {first_line(exc)}") from exc
    else:
        import importlib

        from pocketbench.models.spec import BUILTIN_PACKAGE

        stdlib_text = importlib.import_module(f"{BUILTIN_PACKAGE}._stdlib_text")  # the built-ins' corpus
        _, held_out = stdlib_text.load_corpus().split()
        text = "\n".join(f.data.decode("utf-8", errors="replace") for f in held_out[:64])
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    return [int(i) for i in ids]


def image_classifier(reference: str, location: str, data: ModelData) -> ModelBundle:
    """Logits of the checkpoint's classifier on `--images` (scored top-1) or seeded noise (not scored)."""
    from transformers import AutoImageProcessor, AutoModelForImageClassification

    model = _pretrained(reference, AutoModelForImageClassification, location, dtype=torch.float32).eval()
    processor = _pretrained(reference, AutoImageProcessor, location)
    if data.images is not None:
        pixels, labels = labelled_images(data.images, processor, model.config.label2id)
    else:
        pixels, labels = noise_images(processor), None
    inputs: list[tuple[torch.Tensor, ...]] = [(p[None],) for p in pixels]

    def score(outputs: Sequence[torch.Tensor]) -> float:
        assert labels is not None  # score is given only with labels
        predicted = torch.stack([o.reshape(-1) for o in outputs]).argmax(dim=1)
        return float((predicted == torch.tensor(labels)).float().mean())

    return ModelBundle(
        module=ClassifierLogits(model),
        example_inputs=inputs[0],
        calibration=lambda: inputs[:16],
        eval_inputs=inputs,
        score=score if labels is not None else None,
        description=f"{type(model).__name__} from {location}",
        extra={"checkpoint": location, "params": _params(model)},
    )


def labelled_images(folder: Path, processor: Any, label2id: dict[str, int]) -> tuple[torch.Tensor, list[int]]:
    """Pixels and label ids of `folder/<label>/<image>`; a folder that is no label of the model is one line."""
    from PIL import Image

    if not folder.is_dir():
        raise PocketbenchError(f"--images {folder}: not a folder; give one folder per label, images inside")
    ids = {str(name): int(i) for name, i in label2id.items()}
    classes = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    unknown = [c.name for c in classes if c.name not in ids]
    if unknown or not classes:
        known = ", ".join(list(ids)[:8]) + (" …" if len(ids) > 8 else "")
        what = f"folder(s) {', '.join(unknown[:5])} name no label of the model" if unknown else "no label folders"
        raise PocketbenchError(f"--images {folder}: {what}; name each folder after a label ({known})")
    files = [(f, ids[c.name]) for c in classes for f in sorted(c.iterdir()) if f.suffix.lower() in IMAGE_SUFFIXES]
    if not files:
        raise PocketbenchError(f"--images {folder}: no images ({', '.join(sorted(IMAGE_SUFFIXES))}) in its folders")
    images = []
    for file, _ in files[:IMAGES_MAX]:
        try:
            with Image.open(file) as image:
                images.append(image.convert("RGB"))
        except (OSError, ValueError) as exc:
            raise PocketbenchError(f"--images: cannot read {file}: {first_line(exc)}") from exc
    pixels = processor(images=images, return_tensors="pt")["pixel_values"]
    return pixels.float(), [label for _, label in files[:IMAGES_MAX]]


def noise_images(processor: Any) -> torch.Tensor:
    """Seeded uniform-noise images at the processor's size: inputs to time, never to score."""
    import numpy as np

    size = getattr(processor, "crop_size", None) or getattr(processor, "size", None) or {}
    height = size.get("height") or size.get("shortest_edge") or 224
    width = size.get("width") or size.get("shortest_edge") or 224
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (height, width, 3), dtype=np.uint8) for _ in range(NOISE_IMAGES)]
    return processor(images=images, return_tensors="pt")["pixel_values"].float()


class CausalLMWithCache(torch.nn.Module):
    """forward(tokens [1, T], positions [T]) -> logits [1, T, vocab]: the GenerativeBundle contract
    over transformers' static-cache ExecuTorch module (its cache lives in its buffers)."""

    def __init__(self, model: Any, context: int) -> None:
        from transformers.integrations.executorch import TorchExportableModuleWithStaticCache

        from pocketbench.models.hf_attention import use_grouped_attention

        super().__init__()
        use_grouped_attention(model)  # the exported decode step then never copies the KV cache
        model.generation_config.use_cache = True
        model.generation_config.cache_implementation = "static"
        self.cached = TorchExportableModuleWithStaticCache(model, batch_size=1, max_cache_len=context)

    def forward(self, tokens: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        return self.cached(input_ids=tokens, cache_position=positions)


class ClassifierLogits(torch.nn.Module):
    """forward(pixel_values) -> logits: the classifier without its output dataclass."""

    def __init__(self, model: Any) -> None:
        super().__init__()
        self.model = model

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return self.model(pixel_values=pixel_values).logits
