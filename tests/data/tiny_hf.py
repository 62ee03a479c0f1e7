"""Tiny random-initialised Hugging Face checkpoints, made locally (no hub): a Llama with a BPE
tokenizer trained here, a ResNet classifier with an image processor, and labelled images."""

from __future__ import annotations

from pathlib import Path

LABELS = ("cat", "dog", "fish")
LLAMA = {
    "vocab_size": 320, "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
    "num_attention_heads": 4, "num_key_value_heads": 2, "max_position_embeddings": 1024,
}  # fmt: skip


def llama(folder: Path) -> Path:
    from pocketbench_models._hf_checkpoint import save_llama

    return save_llama(folder, tokenizer_vocab=LLAMA["vocab_size"], **LLAMA)


def resnet(folder: Path) -> Path:
    """A two-stage ResNet over 32×32 images with three labels; its head's input (32) is a
    multiple of 8da4w's group size, so 8da4w has a linear layer to quantize."""
    import torch
    from transformers import ResNetConfig, ResNetForImageClassification, ViTImageProcessor

    torch.manual_seed(0)
    config = ResNetConfig(
        embedding_size=8, hidden_sizes=[16, 32], depths=[1, 1], layer_type="basic",
        id2label=dict(enumerate(LABELS)), label2id={label: i for i, label in enumerate(LABELS)},
    )  # fmt: skip
    ResNetForImageClassification(config).eval().save_pretrained(folder)
    ViTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(folder)
    return folder


def images(folder: Path, per_label: int = 2) -> Path:
    """`folder/<label>/<n>.png`: seeded noise images, ImageNet-style folders named after the labels."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    for label in LABELS:
        (folder / label).mkdir(parents=True, exist_ok=True)
        for n in range(per_label):
            Image.fromarray(rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)).save(folder / label / f"{n}.png")
    return folder
