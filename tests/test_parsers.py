"""Pure parsers of device and runner text, on captured text in tests/data/."""

import json

import pytest
from pocketbench.devices.local import parse_cpuinfo
from pocketbench.runner.procstat import parse_status_kb
from pocketbench.runner.report import RunnerReportError, parse_runner_report

from tests.conftest import DATA


def test_runner_report_parses_a_captured_successful_run():
    report = parse_runner_report((DATA / "python_runner_ok.json").read_text(), backend="python-runtime")
    raw = json.loads((DATA / "python_runner_ok.json").read_text())
    assert report.ok and report.error is None
    assert report.iterations_ns == raw["iterations_ns"] and len(report.iterations_ns) == 5
    assert report.load_ms == pytest.approx(raw["program_load_ms"] + raw["method_load_ms"])
    assert report.peak_rss_kb == raw["peak_rss_kb"] > 0
    assert len(report.output_digests) == 1 and len(report.output_digests[0]) == 64


def test_runner_report_parses_a_captured_load_failure():
    report = parse_runner_report((DATA / "python_runner_load_failed.json").read_text())
    assert report.status == "load_failed" and not report.ok
    assert "Failed to load program" in report.error
    assert report.iterations_ns == [] and report.load_ms is None


@pytest.mark.parametrize("text", ["", "not json", "[1, 2]", '{"schema_version": 99}'])
def test_runner_report_rejects_what_it_cannot_understand(text):
    with pytest.raises(RunnerReportError):
        parse_runner_report(text)


def test_proc_status_fields_in_kb():
    values = parse_status_kb((DATA / "proc_status.txt").read_text())
    assert values["VmHWM"] >= values["VmRSS"] > 0
    assert "Name" not in values  # only kB lines


def test_cpuinfo_gives_model_and_int8_features():
    name, features = parse_cpuinfo((DATA / "cpuinfo_x86.txt").read_text())
    assert name.startswith("AMD EPYC")
    assert "avx2" in features and all(f in {"avx2", "fma", "avx512f", "avx512_vnni"} for f in features)
