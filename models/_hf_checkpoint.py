"""Random-initialised Hugging Face checkpoints made on this machine (never downloaded).

`save_llama` writes what `save_pretrained` writes for a `LlamaForCausalLM` of a given shape,
seeded, with a byte-level BPE tokenizer trained here on training-side Python stdlib files (the
held-out files stay the default perplexity text). llama_speed and the tests build their
checkpoints with it; `pocketbench bench -m hf:FOLDER` then measures the folder like any user's.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch
from pocketbench_models._stdlib_text import load_corpus

SEED = 0
TOKENIZER_TEXT_FILES = 48  # training-side stdlib files the tokenizer's merges are learnt from


def train_tokenizer(folder: Path, vocab_size: int) -> Any:
    """A byte-level BPE tokenizer of at most `vocab_size` ids, saved in `folder` (tokenizer.json)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    train_files, _ = load_corpus().split()
    text = [f.data.decode("utf-8", errors="replace") for f in train_files[:TOKENIZER_TEXT_FILES]]
    tokenizer = Tokenizer(models.BPE(unk_token=None))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=["<s>", "</s>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(text, trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tokenizer, bos_token="<s>", eos_token="</s>")
    fast.save_pretrained(folder)
    return fast


def save_llama(folder: Path, *, tokenizer_vocab: int = 512, **config: Any) -> Path:
    """A seeded random `LlamaForCausalLM(LlamaConfig(**config))` and a tokenizer, saved in `folder`
    (written beside it and renamed into place, so a killed run never leaves half a checkpoint)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    if (folder / "config.json").is_file():
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
    try:
        torch.manual_seed(SEED)
        tokenizer = train_tokenizer(scratch, tokenizer_vocab)
        settings = {"bos_token_id": tokenizer.bos_token_id, "eos_token_id": tokenizer.eos_token_id, **config}
        model = LlamaForCausalLM(LlamaConfig(**settings)).eval()
        model.save_pretrained(scratch)
        os.replace(scratch, folder)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return folder
