"""The `status` column's vocabulary: one enum, the runner's outcomes in it, old text still equal."""

from __future__ import annotations

import pandas as pd
from pocketbench.results.cell_status import MEASURED, CellStatus
from pocketbench.runner.schema import RunnerStatus


def test_every_runner_outcome_is_a_cell_status():
    """A failed runner process's status becomes the cell's unchanged, so the cell vocabulary
    must hold each of them (a new runner status added without one would fail here)."""
    assert {s.value for s in RunnerStatus} <= {s.value for s in CellStatus}


def test_statuses_read_back_from_parquet_compare_equal(tmp_path):
    """Rows store the status as plain text: a saved run (old or new) reads back equal to members."""
    path = tmp_path / "cells.parquet"
    pd.DataFrame({"status": [CellStatus.OK, "partial", "not_run"]}).to_parquet(path)
    back = pd.read_parquet(path)["status"]
    assert list(back) == [CellStatus.OK, CellStatus.PARTIAL, CellStatus.NOT_RUN]
    assert list(back.isin(MEASURED)) == [True, True, False]
    assert all(type(v) is str for v in back)  # stored as text, not as a pickled enum


def test_documented_statuses_are_the_enum():
    """docs/results-schema.md names every status a row can have."""
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[1] / "docs" / "results-schema.md").read_text()
    missing = [s.value for s in CellStatus if f"`{s.value}`" not in doc]
    assert not missing, f"docs/results-schema.md does not name these statuses: {missing}"
