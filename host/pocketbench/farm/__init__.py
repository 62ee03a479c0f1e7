"""Nightly device-farm runs: matrix, orchestration, regression verdicts.

The API is `pocketbench.farm.run_matrix` (farm/session.py), which `pocketbench farm` calls.
"""

from pocketbench.farm.session import FarmResult, run_matrix

__all__ = ["FarmResult", "run_matrix"]
