"""The host side of the runner's JSON contract: every malformed report becomes a failed row naming
the problem, never an ok row — as parsed, through the local device, and through adb.

The runner stand-in is a real process (a shell script) that writes the given JSON and exits with
the given code; on the adb path it is pushed to the emulated phone as POCKETBENCH_DEVICE_RUNNER.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pocketbench.devices.adb.device import AdbDevice
from pocketbench.devices.local import LocalDevice
from pocketbench.runner.process import report_from_exit
from pocketbench.runner.report import BenchJob, RunnerReportError, parse_runner_report

from tests.conftest import DATA

OK_TEXT = (DATA / "runner_ok.json").read_text()


def with_fields(**fields) -> str:
    data = json.loads(OK_TEXT)
    data.update(fields)
    return json.dumps(data)


# name → (JSON text the runner wrote, exit code, words the failed row's error must hold)
SHAPES: dict[str, tuple[str, int, list[str]]] = {
    "truncated": (OK_TEXT[: len(OK_TEXT) // 2], 0, ["truncated"]),
    "not-json": ("Segmentation fault\n", 0, ["not valid JSON"]),
    "empty": ("", 0, ["empty"]),
    "array": ("[1, 2, 3]", 0, ["list, not an object"]),
    "wrong-schema": (with_fields(schema_version=2), 0, ["schema_version 2", "rebuild the runner"]),
    "ok-without-samples": (with_fields(iterations_ns=[]), 0, ["says ok but holds no timed iterations"]),
    "nan": (OK_TEXT.replace('"program_load_ms": ', '"program_load_ms": NaN, "x": ', 1), 0, ["non-finite", "NaN"]),
    "infinity": (
        with_fields(first_inference_ms=1.0).replace('"first_inference_ms": 1.0', '"first_inference_ms": 1e999'),
        0,
        ["non-finite", "first_inference_ms"],
    ),
    "negative-sample": (with_fields(iterations_ns=[5, -1]), 0, ["iterations_ns"]),
    "string-samples": (with_fields(iterations_ns="12"), 0, ["iterations_ns"]),
    "ok-but-exit-4": (OK_TEXT, 4, ["exited with 4", "says ok"]),
}


def test_the_captured_report_is_ok() -> None:
    """The base every shape is cut from parses as ok (else the shapes would prove nothing)."""
    assert parse_runner_report(OK_TEXT).ok


@pytest.mark.parametrize("shape", [s for s in SHAPES if s != "ok-but-exit-4"])
def test_parser_refuses_each_malformed_shape(shape: str) -> None:
    text, _, words = SHAPES[shape]
    with pytest.raises(RunnerReportError) as exc:
        parse_runner_report(text)
    for word in words:
        assert word in str(exc.value)


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_each_shape_becomes_a_failed_report_naming_it(shape: str) -> None:
    text, code, words = SHAPES[shape]
    report = report_from_exit(text, code, "", "native-runner")
    assert not report.ok and report.status == ("bad_report" if code == 0 else "execution_failed")
    assert report.iterations_ns == []
    for word in words:
        assert word in (report.error or "")


def fake_runner(folder: Path, text: str, code: int, outputs: str = "") -> Path:
    """An executable that writes `text` to its --json path (and `outputs` to its --outputs path)
    and exits with `code`."""
    assert "PAYLOAD_END" not in text + outputs
    script = folder / f"fake_runner_{abs(hash((text, code, outputs)))}"
    script.write_text(
        "#!/bin/sh\n"
        'json=""; out=/dev/null\n'
        'while [ $# -gt 0 ]; do case "$1" in --json) json="$2";; --outputs) out="$2";; esac; shift; done\n'
        f"cat > \"$out\" <<'PAYLOAD_END'\n{outputs}\nPAYLOAD_END\n"
        f"cat > \"$json\" <<'PAYLOAD_END'\n{text}\nPAYLOAD_END\n"
        f"exit {code}\n"
    )
    script.chmod(0o755)
    return script


def job_for(tmp_path: Path) -> BenchJob:
    pte = tmp_path / "m.pte"
    pte.write_bytes(b"not read by the fake runner")
    inputs = tmp_path / "in.pbtf"
    inputs.write_bytes(b"PBTF" + bytes(12))
    return BenchJob(pte=pte, inputs=inputs, warmup=0, iterations=1)


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_local_device_turns_each_shape_into_a_failed_row(shape: str, tmp_path: Path, monkeypatch) -> None:
    text, code, words = SHAPES[shape]
    monkeypatch.setenv("POCKETBENCH_RUNNER", str(fake_runner(tmp_path, text, code)))
    report = LocalDevice(backend="native-runner", timeout_s=30).benchmark(job_for(tmp_path))
    assert not report.ok, report
    for word in words:
        assert word in (report.error or "")


def test_local_device_still_reads_a_good_report(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("POCKETBENCH_RUNNER", str(fake_runner(tmp_path, OK_TEXT, 0)))
    assert LocalDevice(backend="native-runner", timeout_s=30).benchmark(job_for(tmp_path)).ok


@pytest.fixture(autouse=True)
def adb_key(tmp_path_factory, monkeypatch):
    """A private adb key (never the user's ~/.android), set before any phone starts so the phone
    trusts it (as tests/test_adb_device.py does)."""
    monkeypatch.setenv("POCKETBENCH_ADB_KEY", str(tmp_path_factory.getbasetemp() / "adb-key" / "adbkey"))


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_adb_device_turns_each_shape_into_a_failed_row(shape: str, phone, tmp_path: Path, monkeypatch) -> None:
    text, code, words = SHAPES[shape]
    monkeypatch.setenv("POCKETBENCH_DEVICE_RUNNER", str(fake_runner(tmp_path, text, code)))
    device = AdbDevice(f"tcp:{phone.host}:{phone.port}", timeout_floor_s=10, iteration_budget_s=0.05)
    report = device.benchmark(job_for(tmp_path))
    assert not report.ok, report
    for word in words:
        assert word in (report.error or "")


@pytest.mark.slow  # a sweep: exports the model, then runs the (stand-in) runner for the cell
def test_unusable_outputs_file_fails_the_row_but_keeps_its_timings(tmp_path: Path, monkeypatch) -> None:
    """The outputs file crossed the same cable: bytes the tensor-file rules refuse fail the row
    (status bad_outputs, naming the rule) while the latency it measured stays in the row."""
    from pocketbench.measure.settings import ProtocolSettings
    from pocketbench.measure.sweep import run_sweep
    from pocketbench.results.store import RunStore

    models = tmp_path / "models_under_test.py"
    models.write_text(
        "import torch\n"
        "from pocketbench.models.registry import ModelBundle\n\n\n"
        "def linear():\n"
        "    x = torch.ones(1, 4)\n"
        "    module = torch.nn.Sequential(torch.nn.Linear(4, 3))\n"
        "    return ModelBundle(module=module, example_inputs=(x,), calibration=lambda: [(x,)], eval_inputs=[(x,)])\n"
    )
    monkeypatch.setenv("POCKETBENCH_RUNNER", str(fake_runner(tmp_path, OK_TEXT, 0, outputs="PBTF garbage")))
    store = RunStore(tmp_path / "results")
    store.write_manifest({}, {})
    device = LocalDevice(backend="native-runner", timeout_s=30)
    failures = run_sweep([f"{models}:linear"], ["fp32"], [device], ProtocolSettings(iterations=3, warmup=1), store)
    (row,) = store.finish().to_dict("records")
    assert failures == 1 and row["status"] == "bad_outputs"
    assert "not a valid tensor file" in row["error"] and "(short-header)" in row["error"]
    measured = {ns / 1e6 for ns in json.loads(OK_TEXT)["iterations_ns"]}
    assert len(row["latency_samples_ms"]) >= len(measured) and set(row["latency_samples_ms"]) <= measured
