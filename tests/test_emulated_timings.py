"""Timings from an emulated phone are flagged and never mixed with a real phone's silently."""

from __future__ import annotations

import pandas as pd
from pocketbench.report.cautions import warnings
from pocketbench.report.column_formats import _flags
from pocketbench.results.compare import compare_runs, timing_kind, timing_mismatches

QEMU = "qemu-user aarch64 on x86_64"


def _run(run_id: str, samples: list[float], **device) -> pd.DataFrame:
    row = {
        "run_id": run_id, "model": "m", "variant": "int8", "device": "tcp:127.0.0.1:47001", "status": "ok",
        "error": None, "attempt": 1, "latency_samples_ms": samples,
        "latency_p50_ms": sorted(samples)[len(samples) // 2],
        "accuracy": 0.9, "size_bytes": 1000, "peak_rss_kb": 5000.0, "ops_outside_delegate": None,
        "backend": "native-runner", "speedup_vs_fp32": 2.0, "device_cpu_features": None,
    }  # fmt: skip
    return pd.DataFrame([row | device])


def test_timing_kinds():
    assert timing_kind({"device_emulated": False}) == "real"
    assert timing_kind({}) == "real"  # runs from before the column existed
    assert timing_kind({"device_emulated": None}) == "real"
    assert timing_kind({"device_emulated": True, "device_emulation": QEMU}) == f"emulated ({QEMU})"


def test_compare_leaves_timings_of_another_kind_out_and_says_so():
    real = _run("base", [1.0, 1.1, 0.9, 1.0, 1.05])
    emulated = _run("now", [100.0, 101.0, 99.0, 100.5, 100.2], device_emulated=True, device_emulation=QEMU)
    compared = compare_runs(emulated, real)
    row = compared.iloc[0]
    assert row["baseline_run_id"] == "base"
    assert pd.isna(row["latency_p50_delta_ms"]) and pd.isna(row["latency_p_value"])
    assert pd.isna(row["peak_rss_delta_kb"])
    assert row["accuracy_delta_points"] == 0.0 and row["size_delta_bytes"] == 0.0  # not timings: compared
    (line,) = timing_mismatches(emulated, real)
    assert line == (
        "not compared: m int8 on tcp:127.0.0.1:47001: the baseline's timings are real,"
        f" this run's are emulated ({QEMU}); latency and memory deltas are left out"
    )
    same = compare_runs(emulated, emulated.assign(run_id="base2")).iloc[0]
    assert same["latency_p50_delta_ms"] == 0.0 and timing_mismatches(emulated, emulated) == []


def test_the_table_flags_emulated_rows_and_warns_once_per_device():
    emulated = _run("now", [100.0, 101.0], device_emulated=True, device_emulation=QEMU)
    assert _flags(emulated.iloc[0]) == "emulated"
    assert _flags(_run("r", [1.0, 1.1]).iloc[0]) != "emulated"
    assert f"emulated: tcp:127.0.0.1:47001 is an emulator ({QEMU}): its timings are not a phone's" in warnings(emulated)
