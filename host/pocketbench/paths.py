"""Where pocketbench keeps things on the host: the artifact and trained-weights cache (the run
results folder is the caller's choice: the CLI's `--results`)."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """Artifact and trained-weights cache (POCKETBENCH_CACHE, else ~/.cache/pocketbench)."""
    root = os.environ.get("POCKETBENCH_CACHE") or Path.home() / ".cache" / "pocketbench"
    path = Path(root)
    path.mkdir(parents=True, exist_ok=True)
    return path


# A TOML file a user hands in (a sweep, a farm matrix) is a page of settings: a few MB is
# already far beyond any real one, and reading more only delays the error.
TOML_MAX_BYTES = 4 * 1024 * 1024


def read_bounded(path: Path, limit: int, what: str) -> str:
    """`path`'s text, refusing a file over `limit` bytes without reading all of it (a named
    pipe or /dev/zero included). FileNotFoundError and other OSErrors are the caller's to word."""
    from pocketbench.errors import PocketbenchError

    with path.open("rb") as handle:
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise PocketbenchError(
            f"{what} {path}: larger than the limit of {limit // (1024 * 1024)} MB; is it the right file?"
        )
    return data.decode("utf-8", errors="replace")
