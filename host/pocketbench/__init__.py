"""pocketbench: compress PyTorch models, lower them to ExecuTorch + XNNPACK, measure on devices.

From Python: `pocketbench.bench(models, variants, devices=...)` returns the run as a DataFrame.
"""

from pocketbench.api import bench

__version__ = "0.1.0"
__all__ = ["__version__", "bench"]
