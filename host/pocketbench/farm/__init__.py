"""Nightly device-farm runs: matrix, orchestration, regression verdicts.

The API is `pocketbench.farm.run_matrix` (farm/session.py), which `pocketbench farm` calls, and
`load_matrix`, which reads and checks a matrix file (its devices, servers and settings) without
running it.
"""

from pocketbench.farm.matrix import Matrix, load_matrix
from pocketbench.farm.session import FarmResult, run_matrix

__all__ = ["FarmResult", "Matrix", "load_matrix", "run_matrix"]
