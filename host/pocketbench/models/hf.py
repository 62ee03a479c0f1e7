"""`hf:CHECKPOINT`: a Hugging Face checkpoint as a pocketbench model (docs/huggingface.md).

A checkpoint is a local folder (`config.json`, `*.safetensors`, a tokenizer or image processor)
or, where the machine reaches the hub, a hub id `owner/name`. What it names is checked before
anything is loaded: a local path must be a folder holding `config.json` whose architecture is one
pocketbench exports (the tables below), and anything else is one line naming what is expected.
Loading (hf_bundles.py) needs transformers: `pip install 'pocketbench[hf]'`. Importing this
module imports neither torch nor transformers.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import json
import re
from pathlib import Path

from pocketbench.errors import PocketbenchError, first_line, shown
from pocketbench.models.spec import ModelBundle, ModelData, ModelSpec

HF_PREFIX = "hf:"
# Architectures exported through transformers' static-cache ExecuTorch module (one method,
# forward(tokens, positions), its KV cache in buffers): what the name in config.json is.
CAUSAL_LMS = {
    "LlamaForCausalLM": "Llama 2/3, SmolLM, TinyLlama",
    "Qwen2ForCausalLM": "Qwen2, Qwen2.5",
}
# Image classifiers exported as forward(pixel_values) -> logits.
IMAGE_CLASSIFIERS = {
    "ResNetForImageClassification": "ResNet",
    "ViTForImageClassification": "ViT, DeiT",
    "MobileViTForImageClassification": "MobileViT",
}
# A hub id: owner/name, each a single component that is not '.' or '..'.
HUB_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,95}/[A-Za-z0-9][A-Za-z0-9_.-]{0,95}")
CONFIG_MAX_BYTES = 1 << 20  # a config.json larger than this is not a model's configuration
INSTALL = "pip install 'pocketbench[hf]'"


def supported() -> str:
    """The architectures pocketbench exports, as one clause."""
    lms = ", ".join(f"{arch} ({families})" for arch, families in CAUSAL_LMS.items())
    classifiers = ", ".join(f"{arch} ({families})" for arch, families in IMAGE_CLASSIFIERS.items())
    return f"causal language models {lms}; image classifiers {classifiers}"


def checkpoint_spec(reference: str, data: ModelData) -> ModelSpec:
    """The spec of `hf:CHECKPOINT`, after checking what it names (one line when it is wrong)."""
    source = reference.removeprefix(HF_PREFIX)
    if not source:
        raise PocketbenchError(f"model {shown(reference)}: give a checkpoint folder or hub id after hf:")
    if importlib.util.find_spec("transformers") is None:
        raise PocketbenchError(f"model {shown(reference)}: hf: models need transformers: {INSTALL}")
    path = Path(source).expanduser()
    if _exists(path):
        architecture = local_architecture(reference, path)
        location = str(path.resolve())
    elif HUB_ID.fullmatch(source) and ".." not in source:
        architecture, location = "", source  # read from the hub when loaded (docs/huggingface.md)
    else:
        raise PocketbenchError(
            f"model {shown(reference)}: no folder {shown(source)}; give a checkpoint folder (config.json, "
            "*.safetensors, tokenizer or image processor) or a hub id owner/name"
        )
    return ModelSpec(
        name=reference,
        factory=functools.partial(_load, reference, location, data),
        source_file=Path(__file__).with_name("hf_bundles.py"),
        digest_extra=_data_digest(location, architecture, data),
    )


def _load(reference: str, location: str, data: ModelData) -> ModelBundle:
    """The bundle of a checked checkpoint, by the architecture its config names (a hub id's is
    known only now). torch and transformers are imported only here, to load."""
    from transformers import AutoConfig

    from pocketbench.models import hf_bundles

    try:
        config = AutoConfig.from_pretrained(location)
    except Exception as exc:  # a hub id that cannot be reached, a config transformers cannot read
        raise PocketbenchError(f"model {shown(reference)}: cannot load its config: {first_line(exc)}") from exc
    if check_architecture(reference, getattr(config, "architectures", None)) in CAUSAL_LMS:
        return hf_bundles.causal_lm(reference, location, data)
    return hf_bundles.image_classifier(reference, location, data)


def local_architecture(reference: str, folder: Path) -> str:
    """The architecture named by a local checkpoint's config.json, if pocketbench exports it."""
    if not folder.is_dir():
        raise PocketbenchError(f"model {shown(reference)}: {folder} is a file; give the checkpoint's folder")
    config = folder / "config.json"
    try:
        if config.stat().st_size > CONFIG_MAX_BYTES:
            raise PocketbenchError(f"model {shown(reference)}: {config} is over 1 MiB; not a model configuration")
        architectures = json.loads(config.read_text(encoding="utf-8")).get("architectures") or []
    except FileNotFoundError:
        raise PocketbenchError(
            f"model {shown(reference)}: {folder} is not a checkpoint folder (no config.json); "
            "give the folder save_pretrained wrote"
        ) from None
    except (OSError, ValueError, AttributeError) as exc:
        raise PocketbenchError(f"model {shown(reference)}: cannot read {config}: {first_line(exc)}") from exc
    return check_architecture(reference, architectures)


def check_architecture(reference: str, architectures: object) -> str:
    """The one supported architecture in a config's `architectures`, else one line naming the supported ones."""
    names = [a for a in architectures if isinstance(a, str)] if isinstance(architectures, list) else []
    for name in names:
        if name in CAUSAL_LMS or name in IMAGE_CLASSIFIERS:
            return name
    found = ", ".join(names) or "none named in config.json"
    raise PocketbenchError(f"model {shown(reference)}: architecture {found} is not supported; supported: {supported()}")


def _exists(path: Path) -> bool:
    try:
        return path.exists()
    except OSError:  # a name too long for the file system
        return False


def _data_digest(location: str, architecture: str, data: ModelData) -> str:
    """What decides the exported program besides this code and the weights: the architecture,
    the cache length, the transformers version, and the text and images (calibration data)."""
    from importlib import metadata

    digest = hashlib.sha256()
    digest.update(f"{location}\0{architecture}\0{data.context}\0{metadata.version('transformers')}\0".encode())
    for given in (data.text, data.images):
        if given is not None and _exists(given):
            files = sorted(given.rglob("*")) if given.is_dir() else [given]
            for file in files:
                if file.is_file():
                    stat = file.stat()
                    name = file.relative_to(given) if given.is_dir() else file.name
                    digest.update(f"{name}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()
