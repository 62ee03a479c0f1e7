"""Reports of the committed example run (a real `pocketbench bench` of digits_cnn, one failed
variant) against the committed v1 run: markdown, JSON and the rich table match golden files.

Regenerate the golden files after an intended change with POCKETBENCH_UPDATE_GOLDEN=1.
"""

from __future__ import annotations

import io
import json
import os

import pandas as pd
import pytest
from pocketbench.cli import app
from pocketbench.report.cautions import warnings
from pocketbench.report.run_json_schema import schema_problems
from pocketbench.report.terminal import render
from pocketbench.report.write import write_report
from pocketbench.results.compare import compare_runs, latency_change, unstable_reason
from pocketbench.results.store import load_run
from pocketbench.stats import describe_modes, summarize
from rich.console import Console
from typer.testing import CliRunner

from tests.conftest import DATA

EXAMPLE, BASELINE = DATA / "example_run", DATA / "v1_run"
GOLDEN = DATA / "golden"


def _golden(name: str, text: str) -> str:
    path = GOLDEN / name
    if os.environ.get("POCKETBENCH_UPDATE_GOLDEN"):
        path.write_text(text, encoding="utf-8")
    return path.read_text(encoding="utf-8")


def _example(fmt: str, tmp_path) -> str:
    frame, manifest, _ = load_run(str(EXAMPLE), tmp_path)
    return write_report(fmt, frame, manifest, tmp_path, load_run(str(BASELINE), tmp_path), None)


def test_markdown_matches_golden(tmp_path):
    text = _example("md", tmp_path)
    assert text == _golden("example_report.md", text)
    # What a CI comment needs to say, spelled out:
    assert text.count("| int4-magic |") == 1 and "| recipe\\_error |" in text
    assert "vs baseline 20261129-072628-0629e9" in text and "failed: digits\\_cnn int4-magic" in text
    assert "not in the baseline (no ok cell of the same model, variant and device): digits\\_cnn int8-dynamic" in text


def test_json_matches_golden(tmp_path):
    text = _example("json", tmp_path).replace(str(tmp_path), "RESULTS")  # the run's folder varies
    report = json.loads(text)
    golden = json.loads(_golden("example_report.json", text))
    assert report == golden
    assert report["results_dir"] == "RESULTS/20261129-073224-3addd4" and schema_problems(report) == []
    assert report["baseline_run_id"] == "20261129-072628-0629e9"
    by_variant = {row["variant"]: row for row in report["rows"]}
    assert set(by_variant) == {"fp32", "int8", "int8-dynamic", "int4-magic"}
    # Matched on model, variant and device: the v1 baseline has fp32 and int8 only.
    assert by_variant["int8"]["baseline_run_id"] == "20261129-072628-0629e9"
    assert by_variant["int8-dynamic"]["baseline_run_id"] is None
    assert by_variant["int4-magic"]["status"] == "recipe_error"


def test_rich_table_matches_golden(tmp_path):
    frame, manifest, _ = load_run(str(EXAMPLE), tmp_path)
    baseline, base_manifest, _ = load_run(str(BASELINE), tmp_path)
    out = io.StringIO()
    Console(file=out, width=120, color_system=None).print(
        render(compare_runs(frame, baseline), manifest["run_id"], base_manifest["run_id"])
    )
    text = out.getvalue()
    assert text == _golden("example_report.txt", text)


def test_csv_has_one_row_per_cell_with_the_comparison(tmp_path):
    frame = pd.read_csv(io.StringIO(_example("csv", tmp_path)))
    assert list(frame["variant"]) == ["fp32", "int8", "int8-dynamic", "int4-magic"]
    assert {"latency_p_value", "latency_p50_change_pct", "latency_samples_ms"} <= set(frame.columns)
    assert len(json.loads(frame["latency_samples_ms"][0])) == 20


def test_report_cli_writes_every_format(tmp_path):
    runner = CliRunner()
    for fmt in ("md", "csv", "json", "html"):
        out = tmp_path / f"report.{fmt}"
        result = runner.invoke(
            app, ["report", str(EXAMPLE), "--compare", str(BASELINE), "--format", fmt, "--out", str(out)]
        )
        assert result.exit_code == 0, result.output
        assert out.stat().st_size > 0
    bad = runner.invoke(app, ["report", str(EXAMPLE), "--format", "pdf"])
    assert bad.exit_code == 1 and "--format 'pdf'" in str(bad.exception)


def test_latency_change_against_reference_values():
    # Fully separated samples of 5 and 5: exact two-sided p = 2 / C(10, 5) = 2 / 252.
    change = latency_change([6.0, 7.0, 8.0, 9.0, 10.0], [1.0, 2.0, 3.0, 4.0, 5.0])
    assert change.p_value == pytest.approx(2 / 252)
    assert change.significant and change.delta_ms == -5.0 and change.change_pct == pytest.approx(-62.5)
    same = latency_change([1.0, 2.0, 3.0, 4.0], [1.0, 2.0, 3.0, 4.0])
    assert same.p_value == pytest.approx(1.0) and not same.significant and same.delta_ms == 0.0
    constant = latency_change([2.0, 2.0], [2.0, 2.0])
    assert constant.p_value == 1.0 and constant.significant is False
    assert latency_change([1.0], [2.0]).p_value is None
    assert unstable_reason([1.0] * 6) is None
    assert unstable_reason([1.0, 2.0, 1.0, 2.0]) == (
        "4 samples: too few for a 95% CI of the p50 (needs 6); robust CV 49% ≥ 10%"
    )


def _row(variant: str, **extra):
    row = {
        "run_id": "r", "model": "m", "variant": variant, "device": "d", "status": "ok", "error": None,
        "ops_outside_delegate": None, "backend": "native-runner", "speedup_vs_fp32": 1.0,
        "device_cpu_features": None, "latency_samples_ms": [1.0, 1.01, 0.99] * 2, "attempt": 1,
    }  # fmt: skip
    row.update(extra)
    return row


def test_warnings_cover_failures_retries_and_later_measurement_flags():
    frame = pd.DataFrame(
        [
            _row("fp32", status="device_error", error="connection dropped"),
            _row("fp32", attempt=2),
            _row("int8", status="load_failed", error="bad pte"),
            _row(
                "int8-dynamic", ops_outside_delegate="aten.gelu×2", throttled=True, throttle_reason="cpu4 2.8→1.6 GHz"
            ),
            _row(
                "int8-per-tensor",
                unstable=True,
                unstable_reason="CV 12%",
                energy_status="battery was Charging during the run: unplug USB",
                energy_charging=True,
            ),
        ]
    )
    notes = warnings(frame)
    assert notes == [
        "failed: m int8 on d: bad pte",
        "retried: m fp32 on d, attempt 1 ended device_error: connection dropped",
        "partial delegation: m int8-dynamic runs outside XNNPACK: aten.gelu×2",
        "throttled: m int8-dynamic on d: cpu4 2.8→1.6 GHz",
        "unstable: m int8-per-tensor on d: CV 12%",
        "charging: m int8-per-tensor on d: battery was Charging during the run: unplug USB",
    ]
    # Without those columns, nothing is said about them; noisy samples are still caught.
    plain = warnings(pd.DataFrame([_row("fp32", latency_samples_ms=[1.0, 3.0, 1.0] * 2)]))
    assert plain == ["unstable: m fp32 on d: p50's 95% CI ±100% > ±5%; rerun with more --iterations or --min-seconds"]


def test_tails_and_a_minority_speed_are_said_without_calling_the_p50_unstable():
    tail = "2 of 500 samples over 2× the p50 (max 6.3 ms, 3.7×)"
    modes = "processes settle at two speeds: 1.71 ms (10 of 12), 2.16 ms (2 of 12)"
    frame = pd.DataFrame(
        [
            _row("fp32", unstable=False, latency_tail_note=tail, latency_modes=modes),
            _row("int8", unstable=False, latency_tail_note=None, latency_modes=None),
        ]
    )
    assert warnings(frame) == [
        f"two speeds: m fp32 on d: {modes}; the p50's CI spans both",
        f"tails: m fp32 on d ({tail}): preempted or slow calls, which move the mean, CV and p99 but not the p50 "
        "or its CI",
    ]


def test_two_speeds_that_widen_the_ci_are_said_once_in_the_unstable_line():
    """Whether the unstable line already names the speeds is decided by the CI's width (a number),
    the rule stats.unstable_reasons applies, not by searching the reason's text."""
    samples = [[1.0, 1.01, 0.99] * 4] * 4 + [[1.3, 1.31, 1.29] * 4] * 2  # 6 processes, 2 at a second speed
    summary = summarize(samples)
    modes = describe_modes(summary.modes)
    wide = (summary.ci_high - summary.ci_low) / 2 / summary.median
    assert summary.modes and wide > 0.05 and modes in summary.unstable_reasons
    row = _row(
        "fp32", unstable=True, unstable_reason="; ".join(summary.unstable_reasons), latency_modes=modes,
        latency_p50_ci_halfwidth=wide,
    )  # fmt: skip
    narrow = {**row, "device": "e", "unstable": False, "unstable_reason": None, "latency_p50_ci_halfwidth": 0.01}
    notes = warnings(pd.DataFrame([row, narrow]))
    assert [n.split(":")[0] for n in notes] == ["unstable", "two speeds"]
    assert notes[1] == f"two speeds: m fp32 on e: {modes}; the p50's CI spans both"


def test_processes_that_disagree_with_several_threads_suggest_one_thread():
    reason = "repetitions' p50 differ by CV 30%"
    several = _row("int8", unstable=True, unstable_reason=reason, latency_repetition_cv=0.3, threads=2)
    single = _row("int8", unstable=True, unstable_reason=reason, latency_repetition_cv=0.3, threads=1, device="e")
    steady = _row("fp32", unstable=True, unstable_reason="CV 12%", latency_repetition_cv=0.01, threads=2)
    notes = warnings(pd.DataFrame([several, single, steady]))
    hint = "with 2 threads each process can settle at a different speed: try --threads 1"
    assert notes == [
        f"unstable: m int8 on d: {reason}; {hint}",
        f"unstable: m int8 on e: {reason}",
        "unstable: m fp32 on d: CV 12%",
    ]


def test_batched_tails_and_unsettled_cells_are_said(tmp_path):
    frame, manifest, _ = load_run(str(EXAMPLE), tmp_path)
    fp32 = frame.index[frame["variant"] == "fp32"][0]
    frame.loc[fp32, ["latency_tails_from_batches", "batch_calls"]] = [True, 48]
    frame.loc[fp32, ["repetitions_stop", "repetitions_target_met", "latency_p50_ci_halfwidth"]] = [
        "budget",
        False,
        0.05,
    ]
    text = write_report("md", frame, manifest, tmp_path, None, None)
    assert "ᵇ" in text and "digits\\_cnn fp32 on local (48 calls)" in text and "p90/p99 are of those batches" in text
    assert "not settled: digits\\_cnn fp32 on local: p50 CI ±5.0% after" in text and "budget" in text
    notes = warnings(frame)
    assert not any("not settled" in n and "int8 on" in n for n in notes)


def test_a_device_chosen_thread_count_is_stated_once_per_device_with_why():
    why = "a computer's multi-thread timings move with where its OS places threads"
    rows = [_row(v, threads=1, threads_source="device-policy", threads_note=why) for v in ("fp32", "int8")]
    rows.append(_row("fp32", device="phone", threads=4, threads_source="runtime", threads_note=None))
    pinned = {"core_clusters": "prime 7 (1×2.91 GHz)", "cpu_mask": "80"}
    rows.append(_row("fp32", device="pixel", threads=1, threads_source="settings", threads_note=None, **pinned))
    assert warnings(pd.DataFrame(rows)) == [
        f"threads: 1 on d, the device's policy: {why}; --threads 0 for the runtime's own count",
        "threads: 1 on pixel (--threads), pinned to prime 7 (1×2.91 GHz) (taskset 80)",
    ]
