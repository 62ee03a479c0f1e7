"""The columnar history reader returns exactly the rows and values of the run-by-run reader.

The reference below is how history was read before the scan: every run through the store's
run reader into pandas, one at a time, then concatenated and filtered. Kept here, in the test
only, as the behaviour the fast path must match on every fixture: both schema versions, a run
with a retried cell and a column later versions add, and a killed run with a cell cut short.
"""

from __future__ import annotations

import json
import math
import shutil
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from pocketbench.results.cell_status import CellStatus
from pocketbench.results.files import run_folders
from pocketbench.results.history import RUN_COLUMNS, SAMPLE_COLUMNS, load_history, not_runs
from pocketbench.results.store import COLUMNS, RunStore, read_run, to_frame

from tests.conftest import DATA

V1_ID, V2_ID, CI_ID = "20261129-072628-0629e9", "20261129-073224-3addd4", "20261201-001851-aaaaaa"
RETRIED, KILLED = "20261201-090000-abcdef", "20261202-090000-killed"


def reference_history(
    root: Path,
    models: list[str] | None = None,
    variants: list[str] | None = None,
    devices: list[str] | None = None,
    since: datetime | None = None,
    runs: Sequence[Path] | None = None,
) -> pd.DataFrame:
    """The run-by-run reader: each run read whole into pandas, then filtered."""
    frames = []
    for folder in run_folders(root) if runs is None else runs:
        manifest = json.loads((folder / "manifest.json").read_text())
        frame = read_run(folder)
        frame["run_created_at"] = manifest.get("created")
        frame["git_sha"] = manifest.get("git_sha")
        frame["host"] = (manifest.get("host") or {}).get("node")
        frames.append(frame)
    history = pd.concat(frames, ignore_index=True) if frames else to_frame([]).assign(**dict.fromkeys(RUN_COLUMNS))
    history = history[COLUMNS + RUN_COLUMNS + [c for c in history.columns if c not in COLUMNS + RUN_COLUMNS]]
    for column, wanted in (("model", models), ("variant", variants), ("device", devices)):
        if wanted:
            history = history[history[column].isin(wanted)]
    if since is not None:
        started = pd.to_datetime(history["started_at"], utc=True, format="ISO8601")
        history = history[started >= pd.Timestamp(since)]
    return history.reset_index(drop=True)


def _value(value: Any) -> Any:
    """A cell as plain Python: every kind of missing is None, lists and arrays are tuples."""
    if isinstance(value, np.ndarray | list | tuple):
        return tuple(_value(v) for v in value)
    if value is None or value is pd.NA or value is pd.NaT or (isinstance(value, float) and math.isnan(value)):
        return None
    return value.item() if isinstance(value, np.generic) else value


def assert_same(fast: pd.DataFrame, reference: pd.DataFrame) -> None:
    assert list(fast.columns) == list(reference.columns)
    assert len(fast) == len(reference)
    for column in reference.columns:
        got, want = [_value(v) for v in fast[column]], [_value(v) for v in reference[column]]
        assert got == want, column


@pytest.fixture
def results(tmp_path):
    """v1, v2 and a CI run as committed; a run with a retried cell and an extra column; a run
    killed with one cell written and one cut short (a progress file, no results.parquet)."""
    root = tmp_path / "results"
    shutil.copytree(DATA / "v1_run", root / V1_ID)
    shutil.copytree(DATA / "example_run", root / V2_ID)
    shutil.copytree(DATA / "ci_run", root / CI_ID)
    base = {"model": "tiny", "variant": "fp32", "device": "tcp:127.0.0.1:5601"}
    store = RunStore(root, run_id=RETRIED)
    store.write_manifest({"models": ["tiny"]}, {"pocketbench": "test"})
    store.write_cell(
        {**base, "status": "device_error", "error": "device rebooted", "started_at": "2026-12-01T09:00:00+00:00"}
    )
    store.write_cell(
        {
            **base,
            "status": "ok",
            "latency_p50_ms": 3.0,
            "latency_samples_ms": [3.0, 3.1],
            "device_emulated": True,
            "started_at": "2026-12-01T09:01:00+01:00",
        }
    )
    store.finish()
    killed = RunStore(root, run_id=KILLED)
    killed.write_manifest({"models": ["tiny"]}, {"pocketbench": "test"})
    fp32 = {
        **base,
        "status": "ok",
        "latency_p50_ms": 2.0,
        "latency_samples_ms": [2.0, 2.1, 1.9],
        "samples_repetition": [0, 0, 1],
        "size_bytes": 1000,
        "started_at": "2026-12-02T09:00:00+00:00",
    }
    killed.write_cell(fp32)
    killed.save_progress(
        {
            **fp32,
            "variant": "int8",
            "latency_samples_ms": [1.0, 1.1],
            "samples_repetition": [0, 0],
            "size_bytes": 400,
            "started_at": "2026-12-02T09:05:00+00:00",
        },
        "killed",
    )
    return root


def test_every_row_and_value_matches_the_run_by_run_reader(results):
    fast = load_history(results)
    assert_same(fast, reference_history(results))
    assert fast.attrs["skipped"] == [] and len(fast) == 2 + 4 + 4 + 2 + 2
    assert "device_emulated" in fast.columns  # a column a later version adds is kept
    assert set(fast.loc[fast["run_id"] == KILLED, "status"]) == {"ok", CellStatus.PARTIAL}


@pytest.mark.parametrize(
    "filters",
    [
        {"models": ["tiny"]},
        {"variants": ["int8"]},
        {"devices": ["local"]},
        {"models": ["digits_cnn"], "variants": ["fp32", "int8"]},
        {"since": datetime(2026, 11, 29, 7, 32, tzinfo=UTC)},
        {"since": datetime(2026, 12, 1, 8, 1, tzinfo=UTC)},  # +01:00 written, 08:01 UTC: kept
        {"since": datetime(2026, 12, 1, 8, 2, tzinfo=UTC)},
        {"models": ["no-such-model"]},
    ],
)
def test_filters_match(results, filters):
    assert_same(load_history(results, **filters), reference_history(results, **filters))


def test_chosen_runs_in_their_order(results):
    chosen = [results / KILLED, results / V1_ID, results / CI_ID]
    assert_same(load_history(results, runs=chosen), reference_history(results, runs=chosen))


def test_columns_and_samples_are_projections_of_the_same_rows(results):
    reference = reference_history(results, variants=["fp32"])
    asked = ["run_id", "latency_p50_ms", "git_sha", "attempt", "latency_samples_ms", "device_emulated"]
    assert_same(load_history(results, variants=["fp32"], columns=asked), reference[asked])
    without = load_history(results, samples=False)
    assert not set(SAMPLE_COLUMNS) & set(without.columns)
    assert_same(without, reference_history(results).drop(columns=list(SAMPLE_COLUMNS)))
    light = load_history(results, columns=asked, samples=False)
    assert list(light.columns) == [c for c in asked if c not in SAMPLE_COLUMNS]


def test_an_unknown_column_is_named(results):
    with pytest.raises(Exception, match="history column 'latency_p51_ms'"):
        load_history(results, columns=["latency_p51_ms"])


def test_an_empty_results_folder(tmp_path):
    empty = load_history(tmp_path / "nothing")
    assert list(empty.columns) == COLUMNS + RUN_COLUMNS and empty.empty
    assert not_runs(tmp_path / "nothing") == []
