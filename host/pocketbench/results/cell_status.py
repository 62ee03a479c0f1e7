"""Why a result row is what it is: the `status` column's vocabulary, one name per outcome.

A str enum, so rows saved as plain text (older runs included) compare equal to its members and
`row["status"] == CellStatus.OK` reads a parquet file written before the enum existed. The runner's
own outcomes (runner/report.py's `RunnerStatus`) become cell statuses unchanged, so every one of
them is a member here too (tests/test_cell_status.py holds the two lists together).
"""

from __future__ import annotations

from enum import StrEnum


class CellStatus(StrEnum):
    """The `status` of one cell (docs/results-schema.md lists what each means)."""

    OK = "ok"
    PARTIAL = "partial"  # cut short: keeps the repetitions it finished, why in `error`
    NOT_RUN = "not_run"  # a farm cell that never started (phone absent or quarantined)
    PRUNED = "pruned"  # a tune trial screened out before it was measured
    MODEL_ERROR = "model_error"
    RECIPE_ERROR = "recipe_error"
    COMPRESS_ERROR = "compress_error"
    EXPORT_ERROR = "export_error"
    BAD_OUTPUTS = "bad_outputs"
    DEVICE_ERROR = "device_error"
    DEVICE_UNHEALTHY = "device_unhealthy"
    # The runner's outcomes, passed through as the cell's.
    BAD_ARGUMENTS = "bad_arguments"
    LOAD_FAILED = "load_failed"
    EXECUTION_FAILED = "execution_failed"
    CRASHED = "crashed"
    TIMEOUT = "timeout"
    INTERRUPTED = "interrupted"
    BAD_REPORT = "bad_report"


# Rows with figures in them: the complete ones and those cut short that kept what they measured.
MEASURED = (CellStatus.OK, CellStatus.PARTIAL)
