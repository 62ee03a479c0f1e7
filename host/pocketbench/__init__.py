"""pocketbench: compress PyTorch models, lower them to ExecuTorch + XNNPACK, measure on devices.

From Python: `pocketbench.bench(models, variants, devices=...)` returns the run as a DataFrame;
`pocketbench.tune(model, devices, ...)` searches recipes and returns the re-measured front.

Nothing is imported until it is asked for: the `pocketbench` command installs its Ctrl-C
handling first (`__main__.py`), and every module this file imported would load before it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pocketbench.api import bench, tune

__all__ = ["__version__", "bench", "tune"]


def __getattr__(name: str) -> Any:
    if name in ("bench", "tune"):
        from pocketbench import api

        return getattr(api, name)
    if name == "__version__":
        # The version is written once, in pyproject.toml; the installed metadata carries it here.
        from importlib import metadata

        try:
            return metadata.version("pocketbench")
        except metadata.PackageNotFoundError:  # a source tree on sys.path, never installed
            return "0+unknown"
    raise AttributeError(f"module 'pocketbench' has no attribute {name!r}")
