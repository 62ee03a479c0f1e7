"""The verdict a farm run gives each measured figure against its history, as saved beside the run.

The vocabulary lives here, below both the farm that judges (farm/regress.py) and the report that
draws the verdicts (report/verdict_table.py): each imports it from the stage beneath them.
"""

from __future__ import annotations

from enum import StrEnum

VERDICTS_FILE = "verdicts.parquet"  # in the run's folder: one row per cell and metric


class Verdict(StrEnum):
    """A str enum, so the saved table (plain text in parquet) compares equal to its members."""

    REGRESSION = "regression"
    IMPROVEMENT = "improvement"
    NO_CHANGE = "no change"
    INSUFFICIENT = "insufficient data"
