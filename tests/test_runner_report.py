"""parse_runner_report on JSON captured from the real pocket_runner (tests/data/runner_*.json)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pocketbench.runner.process import report_from_exit
from pocketbench.runner.report import parse_runner_report

DATA = Path(__file__).parent / "data"


def captured(name: str) -> str:
    return (DATA / f"runner_{name}.json").read_text()


def test_ok_report() -> None:
    report = parse_runner_report(captured("ok"))
    raw = json.loads(captured("ok"))
    assert report.ok and report.error is None and report.backend == "native-runner"
    assert report.runtime_version == "executorch 1.5.1+cpu"
    assert report.threads == 2
    assert len(report.iterations_ns) == 20 and all(isinstance(v, int) and v > 0 for v in report.iterations_ns)
    assert report.load_ms == pytest.approx(raw["program_load_ms"] + raw["method_load_ms"])
    assert report.first_inference_ms == raw["first_inference_ms"]
    assert report.rss_kb_before_load == raw["rss_kb"]["before_load"]
    assert report.rss_kb_after_load == raw["rss_kb"]["after_load"]
    assert report.rss_kb_after_loop == raw["rss_kb"]["after_loop"]
    assert report.peak_rss_kb == raw["peak_rss_kb"] >= report.rss_kb_after_loop
    assert report.planned_buffers_bytes == [880]
    assert report.output_digests == [raw["outputs"][0]["sha256"]] and len(report.output_digests[0]) == 64
    assert report.raw["backends"] == ["XnnpackBackend"]


@pytest.mark.parametrize(
    ("name", "status", "words"),
    [
        ("load_failed", "load_failed", "empty.pte is not a loadable .pte"),
        ("execution_failed", "execution_failed", "50 >= weight.size(0) 10"),
        ("bad_arguments", "bad_arguments", "--model is required"),
    ],
)
def test_failed_reports(name: str, status: str, words: str) -> None:
    report = parse_runner_report(captured(name))
    assert report.status == status and not report.ok
    assert words in (report.error or "") and "\n" not in report.error
    assert report.iterations_ns == [] and report.output_digests == []


def test_load_failure_has_no_load_times() -> None:
    report = parse_runner_report(captured("load_failed"))
    assert report.program_load_ms is None and report.load_ms is None and report.peak_rss_kb


def test_execution_failure_keeps_what_was_measured() -> None:
    report = parse_runner_report(captured("execution_failed"))
    assert report.load_ms is not None and report.first_inference_ms is None


@pytest.mark.parametrize(("name", "code"), [("load_failed", 3), ("execution_failed", 4), ("bad_arguments", 2)])
def test_nonzero_exit_uses_the_json_when_written(name: str, code: int) -> None:
    report = report_from_exit(captured(name), code, "pocket_runner: one line\n", "native-runner")
    assert report.status == name and report.error == json.loads(captured(name))["error"]


def test_nonzero_exit_without_json_uses_stderr() -> None:
    report = report_from_exit(None, 3, "pocket_runner: model.pte is not a loadable .pte: bad\n", "native-runner")
    assert report.status == "load_failed" and "model.pte is not a loadable .pte" in (report.error or "")


def test_sampled_report_schema_1_1() -> None:
    report = parse_runner_report((DATA / "runner_ok_sampled.json").read_text())
    assert report.ok and report.raw["schema_minor"] == 1
    idle_start, idle_end = report.idle_window_ns
    loop_start, loop_end = report.loop_window_ns
    assert idle_start < idle_end <= loop_start < loop_end
    samples = report.samples
    assert samples.t_ns[0] <= idle_start and samples.t_ns[-1] >= loop_end  # both windows are covered
    assert samples.column("/sys/class/power_supply/battery/voltage_now") == ["3850000"] * len(samples.t_ns)
    assert samples.column("/sys/class/powercap/intel-rapl:0/energy_uj") == [None] * len(samples.t_ns)
    assert samples.errors == {"/sys/class/powercap/intel-rapl:0/energy_uj": "No such file or directory"}
    assert len(samples.rss_kb) == len(samples.swap_kb) == len(samples.hwm_kb) == len(samples.t_ns)


def test_schema_1_0_reports_still_parse_without_samples() -> None:
    report = parse_runner_report((DATA / "runner_ok.json").read_text())
    assert report.samples is None and report.loop_window_ns is None and report.idle_window_ns is None
