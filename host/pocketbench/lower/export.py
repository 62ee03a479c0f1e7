"""Lower a compressed model to an ExecuTorch `.pte` with XNNPACK, cached by content hash.

Every artifact has a sidecar manifest (recipe, versions, sha256, delegation share, ops left
outside XNNPACK, planned memory) so nothing is ever parsed out of a file name, and an ETRecord
(the graphs and debug handles ExecuTorch's Inspector needs to name the ops of an ETDump trace).
"""

from __future__ import annotations

import hashlib
import json
import platform
import time
import zlib
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import torch

from pocketbench.atomic import atomic_write_bytes, exclusive, lock_beside
from pocketbench.compress.fingerprint import sources_digest, weights_digest
from pocketbench.compress.layer_kinds import layer_kinds
from pocketbench.compress.pipeline import apply_recipe
from pocketbench.compress.recipe import Distill, Recipe
from pocketbench.errors import PocketbenchError, first_line
from pocketbench.lower.delegation import explain_outside
from pocketbench.models.registry import ModelBundle, ModelSpec, export_program, resolve
from pocketbench.names import slug
from pocketbench.paths import cache_dir
from pocketbench.progress import Reporter

MANIFEST_VERSION = 1
ETRECORD_NAME = "etrecord.bin"
_PACKAGE_DIR = Path(__file__).resolve().parents[1]  # host/pocketbench


@dataclass(frozen=True)
class Artifact:
    """A lowered `.pte` and its manifest; `reused` says whether it came from the cache."""

    path: Path
    manifest: dict[str, Any]
    reused: bool

    @property
    def sha256(self) -> str:
        return self.manifest["sha256"]

    @property
    def etrecord(self) -> Path | None:
        """The ETRecord written beside the `.pte`, when there is one."""
        path = self.path.with_name(ETRECORD_NAME)
        return path if path.exists() else None


def versions() -> dict[str, str]:
    """Versions that change what a `.pte` contains; part of every cache key and manifest."""
    names = ("torch", "executorch", "torchao", "pocketbench")
    found = {}
    for name in names:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "absent"
    found["python"] = platform.python_version()
    return found


def _sources_digest() -> str:
    """The code that compresses and exports, and the code that builds a Hugging Face checkpoint's
    module (its attention and cache wrappers): editing it must invalidate cached artifacts."""
    folders = [(_PACKAGE_DIR / "compress").glob("*.py"), (_PACKAGE_DIR / "lower").glob("*.py")]
    return sources_digest(sorted([*folders[0], *folders[1], *(_PACKAGE_DIR / "models").glob("hf*.py")]))


def artifact_key(spec: ModelSpec, bundle: ModelBundle, recipe: Recipe) -> str:
    payload = json.dumps(
        {
            "model_source": spec.source_digest(),
            "weights": weights_digest(bundle.module),
            "recipe": recipe.to_dict(),
            "versions": versions(),
            "code": _sources_digest(),
            # A distillation student named by reference is code too: its file joins the key.
            "students": [
                resolve(s.student).source_digest() for s in recipe.steps if isinstance(s, Distill) and s.student
            ],
        },
        sort_keys=True,
    )
    return hashlib.sha256(payload.encode()).hexdigest()


def build_artifact(
    spec: ModelSpec,
    bundle: ModelBundle,
    recipe: Recipe,
    reporter: Reporter | None = None,
    cache: Path | None = None,
) -> Artifact:
    """Compress and lower `bundle` as `recipe` says, or reuse the cached artifact."""
    reporter = reporter or Reporter()
    key = artifact_key(spec, bundle, recipe)
    folder = (cache or cache_dir()) / "artifacts" / f"{slug(spec.name)}-{slug(recipe.name)}-{key[:16]}"
    pte, manifest_path = folder / "model.pte", folder / "manifest.json"
    cached = _cached(pte, manifest_path, key)
    if cached is not None:
        return cached

    # One process builds an artifact while others that want it wait, then reuse it.
    def waiting(pid: str) -> Any:
        return reporter.status(f"waiting for pid {pid}, which is building {spec.name} {recipe.name}")

    with exclusive(lock_beside(folder), waiting):
        return _cached(pte, manifest_path, key) or _build(spec, bundle, recipe, reporter, key, folder)


def _cached(pte: Path, manifest_path: Path, key: str) -> Artifact | None:
    """The cached artifact when its manifest names this key and the file is the one it describes."""
    if not (pte.exists() and manifest_path.exists()):
        return None
    try:
        manifest = json.loads(manifest_path.read_text())
    except (OSError, ValueError):
        return None  # a damaged manifest: built again
    if isinstance(manifest, dict) and manifest.get("key") == key and manifest.get("sha256") == _file_sha256(pte):
        return Artifact(pte, manifest, reused=True)
    return None


def _build(
    spec: ModelSpec, bundle: ModelBundle, recipe: Recipe, reporter: Reporter, key: str, folder: Path
) -> Artifact:
    """Compress and lower now, and write the artifact into `folder` (the caller holds its lock)."""
    pte, manifest_path = folder / "model.pte", folder / "manifest.json"
    started = time.perf_counter()
    compressed_model = apply_recipe(bundle, recipe, reporter)
    compressed = time.perf_counter()
    with reporter.status(f"lowering {spec.name} {recipe.name} to XNNPACK"):
        program, delegation, mutable_bytes = _lower(compressed_model.module, bundle, spec.name, recipe.name)
        if delegation["ops_outside"]:
            delegation["outside_explained"] = explain_outside(delegation["ops_outside"], layer_kinds(bundle.module))
        etrecord = _etrecord_bytes(program)
    blob = program.buffer
    plan = program.executorch_program.execution_plan[0]
    manifest = {
        "manifest_version": MANIFEST_VERSION,
        "key": key,
        "model": spec.name,
        "variant": recipe.name,
        "recipe": recipe.to_dict(),
        "sha256": hashlib.sha256(blob).hexdigest(),
        "size_bytes": len(blob),
        # What the file costs to ship: zeros left by unstructured pruning only shrink this one.
        "size_zipped_bytes": len(zlib.compress(blob, 9)),
        "compression": compressed_model.stats,
        "versions": versions(),
        "delegation": delegation,
        # Index 0 of non_const_buffer_sizes is reserved by the emitter; the rest are the
        # memory-planned arenas the runtime allocates for activations.
        "planned_buffers_bytes": [int(s) for s in plan.non_const_buffer_sizes[1:]],
        # Buffers the program writes (a decoder's KV cache): part of the planned memory above.
        "mutable_buffers_bytes": mutable_bytes,
        "compress_seconds": round(compressed - started, 3),
        "export_seconds": round(time.perf_counter() - compressed, 3),
        "input_shapes": [list(t.shape) for t in bundle.example_inputs],
        "etrecord": ETRECORD_NAME if isinstance(etrecord, bytes) else etrecord,
    }
    folder.mkdir(parents=True, exist_ok=True)
    if isinstance(etrecord, bytes):
        atomic_write_bytes(folder / ETRECORD_NAME, etrecord)
    atomic_write_bytes(pte, blob)
    atomic_write_bytes(manifest_path, json.dumps(manifest, indent=2).encode())
    return Artifact(pte, manifest, reused=False)


def _lower(module: torch.nn.Module, bundle: ModelBundle, model: str, variant: str) -> tuple[Any, dict, int]:
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.devtools.backend_debug import get_delegation_info
    from executorch.exir import to_edge_transform_and_lower

    try:
        exported = export_program(bundle, module)
        edge = to_edge_transform_and_lower(exported, partitioner=[XnnpackPartitioner()], generate_etrecord=True)
        mutable_bytes = _mutable_buffer_bytes(edge.exported_program())
        info = get_delegation_info(edge.exported_program().graph_module)
        program = edge.to_executorch()
    except Exception as exc:
        raise PocketbenchError(f"{model} {variant}: export failed: {first_line(exc)}") from exc
    outside = {
        op: b.non_delegated
        for op, b in sorted(info.delegation_by_operator.items())
        if b.non_delegated and op not in _BOOKKEEPING_OPS
    }
    total = info.num_delegated_nodes + sum(outside.values())
    delegation = {
        "delegated_nodes": info.num_delegated_nodes,
        "non_delegated_nodes": info.num_non_delegated_nodes,
        "delegated_fraction": info.num_delegated_nodes / total if total else 0.0,
        "delegated_subgraphs": info.num_delegated_subgraphs,
        "ops_outside": outside,
    }
    return program, delegation, mutable_bytes


def _mutable_buffer_bytes(exported: Any) -> int:
    """Bytes of the buffers the edge program mutates (a KV cache written with index_copy_; torch.export
    under no_grad keeps the in-place op, the edge program's signature lists the mutation)."""
    names = set(exported.graph_signature.buffers_to_mutate.values())
    tensors = {**exported.state_dict, **exported.constants}
    return sum(t.numel() * t.element_size() for name, t in tensors.items() if name in names)


def _etrecord_bytes(program: Any) -> bytes | str:
    """The program's ETRecord serialized, or why it could not be: the `.pte` is still good, and a
    profile without it only lacks the names of the ops outside the delegate."""
    import io

    buffer = io.BytesIO()
    try:
        program.get_etrecord().save(buffer)
    except Exception as exc:
        return f"no ETRecord: {type(exc).__name__}: {first_line(exc, 200)}"
    return buffer.getvalue()


# Graph plumbing that is never a compute op: not worth reporting as "left outside XNNPACK".
_BOOKKEEPING_OPS = {"getitem"}


def _file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
