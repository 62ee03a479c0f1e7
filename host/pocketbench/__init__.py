"""pocketbench: compress PyTorch models, lower them to ExecuTorch + XNNPACK, measure on devices.

From Python: `pocketbench.bench(models, variants, devices=...)` returns the run as a DataFrame;
`pocketbench.tune(model, devices, ...)` searches recipes and returns the re-measured front.
"""

from importlib import metadata as _metadata

from pocketbench.api import bench, tune

# The version is written once, in pyproject.toml; the installed metadata carries it here.
try:
    __version__ = _metadata.version("pocketbench")
except _metadata.PackageNotFoundError:  # a source tree on sys.path, never installed
    __version__ = "0+unknown"
__all__ = ["__version__", "bench", "tune"]
