"""pocketbench: compress PyTorch models, lower them to ExecuTorch + XNNPACK, measure on devices."""

from importlib import metadata as _metadata

# The version is written once, in pyproject.toml; the installed metadata carries it here.
try:
    __version__ = _metadata.version("pocketbench")
except _metadata.PackageNotFoundError:  # a source tree on sys.path, never installed
    __version__ = "0+unknown"
