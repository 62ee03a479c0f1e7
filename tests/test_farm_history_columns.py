"""A night's verdicts read only the history columns they use, and judge exactly as from every column."""

from __future__ import annotations

import json

import pandas as pd
from pocketbench.farm.matrix import RegressionSettings
from pocketbench.farm.nightly import farm_history
from pocketbench.farm.regress import verdict_columns, verdicts
from pocketbench.results.store import atomic_write_parquet, read_run

from tests.conftest import DATA


def _nights(root, count=5):
    real = read_run(DATA / "ci_run")
    runs = []
    for night in range(count):
        run_id = f"20261{night + 1:03d}-020000-{night:06x}"
        frame = real.assign(run_id=run_id, started_at=f"2026-11-{night + 1:02d}T02:00:00+00:00")
        frame["latency_p50_ms"] = frame["latency_p50_ms"] * (1 + 0.3 * (night == count - 1))
        frame["latency_samples_ms"] = [
            [v * (1 + 0.3 * (night == count - 1)) for v in s] for s in frame["latency_samples_ms"]
        ]
        if night >= 3:  # a device fact only newer files hold
            frame["device_host"] = "lab-a"
        folder = root / run_id
        folder.mkdir(parents=True)
        config = {"kind": "farm", "farm": "f"}
        (folder / "manifest.json").write_text(
            json.dumps({"run_id": run_id, "created": frame["started_at"][0], "config": config})
        )
        atomic_write_parquet(frame, folder / "results.parquet")
        runs.append(run_id)
    return runs


def test_verdicts_from_their_columns_equal_verdicts_from_every_column(tmp_path):
    runs = _nights(tmp_path)
    settings = RegressionSettings()
    for match in ((), ("device_host",)):
        full, flagged = farm_history(tmp_path, "f", runs[-1])
        lean, _ = farm_history(tmp_path, "f", runs[-1], verdict_columns(match))
        assert set(lean.columns) <= set(verdict_columns(match)) | {"run_created_at", "git_sha", "host"}
        assert ("device_host" in lean) == bool(match)
        judged = [
            verdicts(h, runs[-1], settings.thresholds, settings.alpha, settings.min_samples, flagged, match)
            for h in (full, lean)
        ]
        pd.testing.assert_frame_equal(judged[0], judged[1])
        assert (judged[0]["verdict"] == "regression").any()  # the last night's latency moved
