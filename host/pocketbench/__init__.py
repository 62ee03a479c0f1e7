"""pocketbench: compress PyTorch models, lower them to ExecuTorch + XNNPACK, measure on devices."""

__version__ = "0.1.0"
