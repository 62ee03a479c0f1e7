"""Byte-level text every Python installation ships: the standard library's own `.py` sources.

Shared by the built-in models that learn from text (tiny_transformer now; a byte-level language
model can train on the same corpus). The corpus is one deterministic file list, split into
training and held-out files by a hash of each path, and a fingerprint of exactly those files
(path, size, sha256) that is stored with any weights trained on it: another Python version ships
other sources, so its fingerprint differs and the weights are trained again there.
"""

from __future__ import annotations

import hashlib
import sys
import sysconfig
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

# Test suites and installed third-party code are not "the standard library's text".
EXCLUDED_PARTS = {"test", "tests", "idle_test", "site-packages", "dist-packages", "__pycache__"}
HELD_OUT_EVERY = 4  # every 4th file of a package (in hash order) is held out


@dataclass(frozen=True)
class TextFile:
    """One source file: its path under the stdlib root, its top-level package and its bytes."""

    path: str
    package: str
    data: bytes


@dataclass(frozen=True)
class StdlibCorpus:
    """The stdlib sources of one Python installation, split by file."""

    root: Path
    files: tuple[TextFile, ...]

    @property
    def fingerprint(self) -> str:
        """sha256 over every file's path, size and content hash: what trained weights are keyed by."""
        digest = hashlib.sha256()
        for f in self.files:
            digest.update(f"{f.path}\0{len(f.data)}\0{hashlib.sha256(f.data).hexdigest()}\n".encode())
        return digest.hexdigest()

    def manifest(self) -> dict[str, object]:
        """What to keep beside trained weights: the Python version, the file list and its fingerprint."""
        return {
            "python": sys.version.split()[0],
            "root": str(self.root),
            "fingerprint": self.fingerprint,
            "files": [[f.path, len(f.data), hashlib.sha256(f.data).hexdigest()] for f in self.files],
        }

    def packages(self, count: int, min_files: int = 6) -> list[str]:
        """The `count` top-level packages with the most files (ties by name), each with at least
        `min_files` files so that some can be held out."""
        sizes: dict[str, int] = {}
        for f in self.files:
            if "/" in f.path:
                sizes[f.package] = sizes.get(f.package, 0) + 1
        ranked = sorted((p for p, n in sizes.items() if n >= min_files), key=lambda p: (-sizes[p], p))
        if len(ranked) < count:
            raise RuntimeError(
                f"the standard library at {self.root} has only {len(ranked)} packages with {min_files}+ "
                f"source files; {count} are needed"
            )
        return sorted(ranked[:count])

    def split(self, packages: Sequence[str] | None = None) -> tuple[list[TextFile], list[TextFile]]:
        """(training, held-out) files: per package, every HELD_OUT_EVERY-th file in path-hash order
        is held out, so both sides hold every package and the split never depends on file order."""
        chosen = [f for f in self.files if packages is None or f.package in packages]
        train: list[TextFile] = []
        held_out: list[TextFile] = []
        for package in sorted({f.package for f in chosen}):
            members = sorted((f for f in chosen if f.package == package), key=lambda f: _path_hash(f.path))
            for i, f in enumerate(members):
                (held_out if i % HELD_OUT_EVERY == HELD_OUT_EVERY - 1 else train).append(f)
        return train, held_out


def _path_hash(path: str) -> str:
    return hashlib.sha256(path.encode()).hexdigest()


def stdlib_root() -> Path:
    return Path(sysconfig.get_paths()["stdlib"])


def load_corpus(root: Path | None = None) -> StdlibCorpus:
    """Every `.py` file under the stdlib root (tests and site-packages left out), sorted by path."""
    root = root or stdlib_root()
    files = []
    for path in sorted(root.rglob("*.py")):
        relative = path.relative_to(root)
        if EXCLUDED_PARTS & set(relative.parts[:-1]):
            continue
        files.append(TextFile(relative.as_posix(), relative.parts[0].removesuffix(".py"), path.read_bytes()))
    if not files:
        raise RuntimeError(f"no .py sources under {root}: this Python installation ships only bytecode")
    return StdlibCorpus(root, tuple(files))


def sample_windows(files: Sequence[TextFile], length: int, count: int, generator: torch.Generator) -> torch.Tensor:
    """`count` windows of `length` bytes (int64 tokens 0–255), each from a file drawn with
    probability proportional to its size, at a uniform offset; files shorter than a window are
    skipped."""
    usable = [f for f in files if len(f.data) > length]
    if not usable:
        raise RuntimeError(f"no file is longer than {length} bytes")
    weights = torch.tensor([len(f.data) - length for f in usable], dtype=torch.float64)
    picks = torch.multinomial(weights, count, replacement=True, generator=generator)
    windows = torch.empty(count, length, dtype=torch.int64)
    for row, pick in enumerate(picks.tolist()):
        data = usable[pick].data
        start = int(torch.randint(0, len(data) - length + 1, (1,), generator=generator))
        windows[row] = torch.frombuffer(bytearray(data[start : start + length]), dtype=torch.uint8).long()
    return windows
