"""History: runs of both schema versions, filtered and exported, as one DataFrame."""

from __future__ import annotations

import io
import json
import shutil
from datetime import UTC, datetime

import pandas as pd
import pytest
from pocketbench.cli import app
from pocketbench.errors import PocketbenchError
from pocketbench.results.history import RUN_COLUMNS, SAMPLE_COLUMNS, export, load_history, parse_since
from pocketbench.results.migrations import SCHEMA_VERSION
from pocketbench.results.store import COLUMNS, RunStore, load_run, parquet_bytes, resolve_run
from typer.testing import CliRunner

from tests.conftest import DATA

V1_ID, V2_ID = "20261129-072628-0629e9", "20261129-073224-3addd4"


@pytest.fixture
def results(tmp_path):
    """The committed v1 and v2 runs, a v2 run written here with a retried cell, in one folder."""
    root = tmp_path / "results"
    shutil.copytree(DATA / "v1_run", root / V1_ID)
    shutil.copytree(DATA / "example_run", root / V2_ID)
    store = RunStore(root, run_id="20261201-090000-abcdef")
    store.write_manifest({"models": ["tiny"]}, {"pocketbench": "test"})
    base = {
        "model": "tiny",
        "variant": "fp32",
        "device": "tcp:127.0.0.1:5601",
        "started_at": "2026-12-01T09:00:00+00:00",
    }
    store.write_cell({**base, "status": "device_error", "error": "device rebooted"})
    store.write_cell(
        {
            **base,
            "status": "ok",
            "latency_p50_ms": 3.0,
            "latency_samples_ms": [3.0, 3.1],
            "device_state_json": {"battery_status": "Discharging"},
        }
    )
    return root


def test_every_run_of_every_version_is_one_dataframe(results):
    history = load_history(results)
    assert list(history.columns) == COLUMNS + RUN_COLUMNS
    assert list(history.drop_duplicates("run_id")["run_id"]) == [V1_ID, V2_ID, "20261201-090000-abcdef"]
    assert len(history) == 2 + 4 + 2 and history.attrs["skipped"] == []
    assert set(history["schema_version"]) == {SCHEMA_VERSION}
    v1 = history[history["run_id"] == V1_ID]
    # The v1 column `samples_ms` arrives as `latency_samples_ms`; v1 never retried.
    assert v1["latency_samples_ms"].map(len).tolist() == [12, 12] and set(v1["attempt"]) == {1}
    assert "samples_ms" not in history
    retried = history[history["model"] == "tiny"]
    assert list(retried["attempt"]) == [1, 2] and list(retried["status"]) == ["device_error", "ok"]
    assert json.loads(retried["device_state_json"].iloc[1]) == {"battery_status": "Discharging"}
    assert history.loc[history["run_id"] == V2_ID, "git_sha"].iloc[0] == "4d663ba09c81ce6a94963dfc5d0df3f412325a97"


def test_filters(results):
    assert set(load_history(results, models=["tiny"])["run_id"]) == {"20261201-090000-abcdef"}
    assert len(load_history(results, variants=["int8"])) == 2
    assert set(load_history(results, devices=["local"])["run_id"]) == {V1_ID, V2_ID}
    since = load_history(results, since=parse_since("2026-11-29T07:32"))
    assert set(since["run_id"]) == {V2_ID, "20261201-090000-abcdef"}
    now = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
    assert parse_since("2h", now) == datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
    # Only the runs named, in the order named (how the farm reads one farm's nights).
    chosen = load_history(results, runs=[results / V2_ID, results / V1_ID])
    assert list(chosen.drop_duplicates("run_id")["run_id"]) == [V2_ID, V1_ID] and len(chosen) == 4 + 2
    with pytest.raises(PocketbenchError, match="start time 'yesterday': use a date"):
        parse_since("yesterday")  # the library names the thing; the CLI names its option:
    bad = CliRunner().invoke(app, ["history", "--results", str(results), "--since", "yesterday"])
    assert bad.exit_code == 1 and str(bad.exception).startswith("--since 'yesterday': use a date")


def test_since_leaves_unread_the_runs_finished_before_it(results):
    """A results file last written over a day before `since` holds no row started since: it is
    not opened (a damaged one is not even named), and the rows are those of a full read."""
    import os

    since = parse_since("2026-11-29T07:32")
    full = load_history(results, since=since)
    old = results / V1_ID / "results.parquet"
    old.write_bytes(b"not parquet")  # finished long ago: never opened, so never named
    stamp = datetime(2026, 11, 27, tzinfo=UTC).timestamp()
    os.utime(old, (stamp, stamp))
    pruned = load_history(results, since=since)
    pd.testing.assert_frame_equal(pruned, full)
    assert pruned.attrs["skipped"] == []
    recent = datetime(2026, 11, 28, 12, tzinfo=UTC).timestamp()  # within a day of `since`: read
    os.utime(old, (recent, recent))
    assert any("results.parquet" in s for s in load_history(results, since=since).attrs["skipped"])


def test_exports_round_trip(results, tmp_path):
    runner = CliRunner()
    history = ["history", "--results", str(results)]
    as_json = runner.invoke(app, [*history, "--format", "json", "--variant", "int8", "--samples"])
    assert as_json.exit_code == 0
    rows = json.loads(as_json.stdout)
    assert [r["run_id"] for r in rows] == [V1_ID, V2_ID] and len(rows[0]["latency_samples_ms"]) == 12

    as_csv = runner.invoke(app, [*history, "--format", "csv", "--samples"])
    frame = pd.read_csv(io.StringIO(as_csv.stdout))
    assert list(frame.columns) == COLUMNS + RUN_COLUMNS and len(frame) == 8
    assert len(json.loads(frame["latency_samples_ms"][0])) == 12  # lists travel as JSON text
    # Without --samples the raw sample lists, the bulk of the data, are not even read.
    light = pd.read_csv(io.StringIO(runner.invoke(app, [*history, "--format", "csv"]).stdout))
    assert list(light.columns) == [c for c in COLUMNS + RUN_COLUMNS if c not in SAMPLE_COLUMNS] and len(light) == 8

    out = tmp_path / "history.parquet"
    written = runner.invoke(app, ["history", "--results", str(results), "--format", "parquet", "--out", str(out)])
    assert written.exit_code == 0
    assert len(pd.read_parquet(out)) == 8
    refused = runner.invoke(app, ["history", "--results", str(results), "--format", "parquet"])
    assert refused.exit_code == 1 and "--out" in str(refused.exception)
    in_memory = export(load_history(results), "parquet", None)  # a library caller gets the bytes
    assert len(pd.read_parquet(io.BytesIO(in_memory))) == 8

    table = runner.invoke(app, ["history", "--results", str(results)], env={"COLUMNS": "200"})
    assert "history: 8 rows from 3 run(s)" in table.stdout and "device_error" in table.stdout
    newest = runner.invoke(app, [*history, "--limit", "2"], env={"COLUMNS": "200"})
    assert "history: 8 rows from 3 run(s)" in newest.stdout and "6 older rows not shown" in newest.stdout
    assert "device_error" in newest.stdout and V1_ID not in newest.stdout


def test_run_references(results):
    assert resolve_run("LATEST", results).name == "20261201-090000-abcdef"
    assert resolve_run("first", results).name == V1_ID
    frame, manifest, _ = load_run(V1_ID, results)
    assert manifest["schema_version"] == 1 and list(frame["variant"]) == ["fp32", "int8"]


def test_a_file_from_a_newer_pocketbench_is_refused_by_name(results):
    newer = results / V2_ID / "results.parquet"
    frame = pd.read_parquet(newer).assign(schema_version=SCHEMA_VERSION + 1)
    newer.write_bytes(parquet_bytes(frame))
    history = load_history(results)
    assert V2_ID not in set(history["run_id"])
    (skipped,) = history.attrs["skipped"]
    assert f"results schema v{SCHEMA_VERSION + 1}" in skipped and "upgrade pocketbench" in skipped


def test_the_schema_document_names_every_column():
    from pocketbench.results.compare import COMPARE_COLUMNS

    documented = (DATA.parent.parent / "docs" / "results-schema.md").read_text()
    missing = [c for c in COLUMNS + RUN_COLUMNS + COMPARE_COLUMNS if f"`{c}`" not in documented]
    assert missing == []


def test_a_v2_run_says_charging_as_the_typed_flag(tmp_path):
    """v2 wrote a charging battery only into `energy_status`; read today, those rows carry
    `energy_charging`, whichever reader asks (one run, the whole history, or only that column)."""
    root = tmp_path / "results"
    run = root / "20261130-120000-c1c1c1"
    shutil.copytree(DATA / "ci_run", run)  # a v2 run: 4 ok cells, energy "not available: …"
    (run / "cells").rename(tmp_path / "cells")  # readers take results.parquet alone
    path = run / "results.parquet"
    frame = pd.read_parquet(path)
    assert set(frame["schema_version"]) == {2} and "energy_charging" not in frame
    frame["energy_status"] = [
        "battery was Charging during the run: the fuel gauge then measures the charger",
        "charging allowed (--allow-charging); current in µA, negative while discharging (seen)",
        "current in µA, negative while discharging (seen)",
        None,
    ]
    path.write_bytes(parquet_bytes(frame))
    expected = [True, True, False, None]
    loaded, _, _ = load_run(str(run), root)
    assert loaded["energy_charging"].tolist() == expected and set(loaded["schema_version"]) == {SCHEMA_VERSION}
    assert load_history(root)["energy_charging"].tolist() == expected
    only = load_history(root, columns=["variant", "energy_charging"])
    assert list(only.columns) == ["variant", "energy_charging"] and only["energy_charging"].tolist() == expected
