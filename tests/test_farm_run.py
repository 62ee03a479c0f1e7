"""Farm orchestration on real runner processes: parallel devices, quarantine, resume, verdicts."""

from __future__ import annotations

import pandas as pd
import pytest
from pocketbench.devices.adb.lease import DeviceLease
from pocketbench.farm.nightly import farm_history, judge
from pocketbench.farm.regress import INSUFFICIENT
from pocketbench.farm.run import run_farm
from pocketbench.results.cell_status import CellStatus
from pocketbench.results.store import RunStore, read_cells

from tests.farm_support import Phone, matrix, write_models

pytestmark = pytest.mark.slow  # every test runs a farm: exports and runner processes per cell


@pytest.fixture
def models_file(tmp_path):
    return write_models(tmp_path)


def _phones(tmp_path, names):
    return {name: Phone(f"serial-{name}", tmp_path / f"cable-{name}") for name in names}


def test_three_phones_measure_every_cell_once(tmp_path, models_file):
    plan = matrix(models_file, [("a", "local"), ("b", "usb:B"), ("c", "usb:C")], variants=("fp32", "int8"))
    store = RunStore(tmp_path / "results", "night-1")
    run = run_farm(plan, store, _phones(tmp_path, "abc"))
    frame = run.frame
    assert len(frame) == 3 * 2
    assert set(frame["status"]) == {"ok"}, frame[["device", "status", "error"]]
    assert sorted(frame["device"].unique()) == ["a", "b", "c"]
    assert set(frame["device_serial"]) == {"serial-a", "serial-b", "serial-c"}
    assert (frame["attempt"] == 1).all()
    # One artifact per (model, variant), shared by the three phones.
    assert frame.groupby(["model", "variant"])["artifact_sha256"].nunique().eq(1).all()
    assert len(list((store.folder / "cells").glob("*.parquet"))) == 6
    table = judge(run, plan, tmp_path / "results")
    assert set(table["verdict"]) == {INSUFFICIENT}  # the first night has nothing to compare with
    assert (store.folder / "verdicts.parquet").exists()


def test_a_phone_dropping_out_is_quarantined_and_the_others_finish(tmp_path, models_file):
    plan = matrix(
        models_file,
        [("a", "usb:A"), ("b", "usb:B")],
        ("small", "wide"),
        ("fp32", "int8"),
        quarantine_after=2,
        retries=1,
    )
    phones = _phones(tmp_path, "ab")
    dropping = phones["b"]
    original = dropping.benchmark

    def measure_once_then_unplug(job):
        report = original(job)
        dropping.cable.unlink()  # the phone falls off the network after its first cell, for good
        return report

    dropping.benchmark = measure_once_then_unplug
    run = run_farm(plan, RunStore(tmp_path / "results", "night-1"), phones)
    by_device = {d: f.sort_values("started_at") for d, f in run.frame.groupby("device")}
    assert list(by_device["a"]["status"]) == ["ok"] * 4
    statuses = list(by_device["b"]["status"])
    assert statuses[0] == "ok"
    assert statuses[1:3] == ["device_unhealthy", "device_unhealthy"]
    assert statuses[3:] == [CellStatus.NOT_RUN]
    assert list(by_device["b"]["attempt"]) == [1, 2, 2, 1]  # each failed cell was retried once
    stored = read_cells(tmp_path / "results" / "night-1")
    assert len(stored) == 4 + 1 + 2 + 2 + 1  # failed attempts are kept in the store
    assert "connection refused" in by_device["b"]["error"].iloc[1]
    assert "quarantined after 2 failed cells in a row" in by_device["b"]["error"].iloc[3]
    assert list(run.quarantined) == ["b"]


def test_resuming_redoes_only_what_did_not_complete(tmp_path, models_file):
    plan = matrix(
        models_file, [("a", "usb:A"), ("b", "usb:B")], variants=("fp32", "int8"), quarantine_after=1, retries=0
    )
    phones = _phones(tmp_path, "ab")
    phones["b"].cable.unlink()
    first = run_farm(plan, RunStore(tmp_path / "results", "night-1"), phones)
    assert (first.frame.loc[first.frame["device"] == "b", "status"] != "ok").all()
    kept = first.frame[first.frame["device"] == "a"].set_index(["model", "variant"])["started_at"]

    phones["b"].cable.touch()  # plugged back in
    again = run_farm(plan, RunStore(tmp_path / "results", "night-1", resume=True), phones)
    assert again.skipped == 2
    assert len(again.frame) == 4
    assert set(again.frame["status"]) == {"ok"}
    assert not again.frame.duplicated(["device", "model", "variant"]).any()
    stored = read_cells(tmp_path / "results" / "night-1")
    assert len(stored) == 2 + 2 + 2  # a's two cells once; b's failed and not-run tries, then its good ones
    assert not stored.duplicated(["device", "model", "variant", "attempt"]).any()
    # The complete cells were not measured again.
    resumed = again.frame[again.frame["device"] == "a"].set_index(["model", "variant"])["started_at"]
    pd.testing.assert_series_equal(resumed.sort_index(), kept.sort_index())


def test_a_resumed_run_must_use_the_same_matrix(tmp_path, models_file):
    from pocketbench.errors import PocketbenchError

    phones = _phones(tmp_path, "a")
    run_farm(matrix(models_file, [("a", "usb:A")]), RunStore(tmp_path / "results", "n1"), phones)
    other = matrix(models_file, [("a", "usb:A")], iterations=9)
    with pytest.raises(PocketbenchError, match="started with a different matrix"):
        run_farm(other, RunStore(tmp_path / "results", "n1", resume=True), phones)


def test_a_phone_leased_by_another_run_is_not_touched(tmp_path, models_file):
    plan = matrix(models_file, [("a", "usb:A"), ("b", "usb:B")])
    phones = _phones(tmp_path, "ab")
    with DeviceLease("serial-b", wait_s=0):
        run = run_farm(plan, RunStore(tmp_path / "results", "night-1"), phones)
    statuses = run.frame.groupby("device")["status"].agg(set)
    assert statuses["a"] == {"ok"}
    assert statuses["b"] == {CellStatus.NOT_RUN}
    assert "serial-b is in use by another pocketbench process" in run.quarantined["b"]


def test_history_keeps_only_runs_of_the_same_farm(tmp_path, models_file):
    phones = _phones(tmp_path, "a")
    plan = matrix(models_file, [("a", "usb:A")])
    for run_id in ("n1", "n2"):
        run = run_farm(plan, RunStore(tmp_path / "results", run_id), phones)
        table = judge(run, plan, tmp_path / "results")
    bench = RunStore(tmp_path / "results", "a-bench-run")
    bench.write_manifest({"models": ["x"]}, {})
    history, flagged = farm_history(tmp_path / "results", "test-farm")
    assert sorted(history["run_id"].unique()) == ["n1", "n2"]
    assert set(table["baseline_run"].dropna()) == {"n1"}
    assert {f[0] for f in flagged} <= {"n1", "n2"}
