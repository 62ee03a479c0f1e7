"""Where pocketbench keeps things on the host: the artifact/weights cache and run results."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """Artifact and trained-weights cache (POCKETBENCH_CACHE, else ~/.cache/pocketbench)."""
    root = os.environ.get("POCKETBENCH_CACHE") or Path.home() / ".cache" / "pocketbench"
    path = Path(root)
    path.mkdir(parents=True, exist_ok=True)
    return path


def results_root() -> Path:
    """Run outputs (POCKETBENCH_RESULTS, else ./results)."""
    return Path(os.environ.get("POCKETBENCH_RESULTS") or "results")
