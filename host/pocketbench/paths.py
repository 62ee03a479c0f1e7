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
