"""The arm64 bundle end to end on the emulated arm64-v8a phone (aarch64 under qemu-user, no aarch64
system library visible): what a user with a phone and no NDK gets from `just build-runner-android`.

Emulated arm64 is ~100× slower than native: tiny models, few iterations.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

import numpy as np
import pytest
from pocketbench.cli import app
from pocketbench.compress.recipe import parse_variant
from pocketbench.devices.adb.deploy import Deployer
from pocketbench.devices.adb.device import AdbDevice
from pocketbench.devices.adb.runner_choice import RunnerChoice
from pocketbench.devices.bundle.manifest import read_bundle
from pocketbench.lower.export import build_artifact
from pocketbench.models.registry import resolve
from pocketbench.runner import tensorfile
from pocketbench.runner.report import BenchJob
from typer.testing import CliRunner

from tests import runner_support as support

pytestmark = pytest.mark.slow  # the cross build, and every run emulated

runner = CliRunner()
VARIANTS = ("fp32", "int8")


@pytest.fixture(scope="module")
def arm64_bundle() -> Path:
    return support.android_bundle("arm64-v8a")


def bench(tmp_path: Path, device: str, results: str, *extra: str):
    args = ["bench", "--model", "digits_cnn", "--variants", ",".join(VARIANTS), "--iterations", "3"]
    args += ["--warmup", "1", "--repetitions", "1", "--device", device, "--results", str(tmp_path / results)]
    result = runner.invoke(app, [*args, *extra, "--json"])
    assert result.exit_code == 0, (result.exception, result.stderr[-3000:])
    return {row["variant"]: row for row in json.loads(result.stdout)["rows"]}


@pytest.fixture(scope="module")
def local_rows(tmp_path_factory) -> dict[str, dict]:
    support.host_runner()
    return bench(tmp_path_factory.mktemp("local"), "local", "results")


def assert_phone_rows(rows: dict[str, dict], local: dict[str, dict], bundle: Path, pushed: int) -> None:
    for variant in VARIANTS:
        row = rows[variant]
        assert row["status"] == "ok", row["error"]
        assert row["device_abi"] == "arm64-v8a" and row["device_emulated"] is True
        assert row["backend"] == "native-runner"
        assert row["device_runner"] == f"bundle arm64-v8a {read_bundle(bundle).bundle_id[:12]}"
        assert row["device_runner_pushed_bytes"] == pushed
        assert row["accuracy"] == local[variant]["accuracy"]


def test_bench_over_adb_shell_then_again_pushing_nothing(arm64_phone, arm64_bundle, local_rows, tmp_path):
    spec = f"tcp:{arm64_phone.address}"
    first = bench(tmp_path, spec, "first")
    assert_phone_rows(first, local_rows, arm64_bundle, read_bundle(arm64_bundle).total_bytes)
    again = bench(tmp_path, spec, "again")
    assert_phone_rows(again, local_rows, arm64_bundle, 0)


def test_bench_through_debian_adb_then_again_pushing_nothing(
    arm64_phone, arm64_bundle, local_rows, host_adb, tmp_path, monkeypatch
):
    assert "connected" in host_adb.connect(arm64_phone).stdout
    monkeypatch.setenv("ANDROID_ADB_SERVER_PORT", str(host_adb.server_port))
    spec = f"adb:{arm64_phone.address}"
    assert_phone_rows(bench(tmp_path, spec, "first"), local_rows, arm64_bundle, read_bundle(arm64_bundle).total_bytes)
    assert_phone_rows(bench(tmp_path, spec, "again"), local_rows, arm64_bundle, 0)


@pytest.fixture(scope="module")
def digits(tmp_path_factory) -> tuple[dict[str, Path], Path]:
    spec = resolve("digits_cnn")
    model = spec.load()
    ptes = {v: build_artifact(spec, model, parse_variant(v)).path for v in VARIANTS}
    inputs = tmp_path_factory.mktemp("digits") / "inputs.pbtf"
    tensorfile.write(inputs, [[t.numpy() for t in batch] for batch in model.eval_inputs[:3]])
    return ptes, inputs


def test_outputs_equal_the_host_runner(arm64_phone, arm64_bundle, digits, tmp_path):
    ptes, inputs = digits
    device = AdbDevice(f"tcp:{arm64_phone.address}")
    try:
        for variant, pte in ptes.items():
            report = device.benchmark(
                BenchJob(pte=pte, inputs=inputs, warmup=0, iterations=1, outputs=tmp_path / f"{variant}.pbtf")
            )
            assert report.ok, report.error
            host_out = tmp_path / f"host-{variant}.pbtf"
            host = support.run_runner(support.host_runner(), "--model", pte, "--inputs", inputs, "--iterations", "1",
                                      "--outputs", host_out, json_path=tmp_path / "h.json")  # fmt: skip
            assert host.returncode == 0, host.stderr
            got, want = (
                tensorfile.read(tmp_path / f"{variant}.pbtf"),
                tensorfile.read(host_out),
            )
            assert len(got) == len(want) == 3
            for got_set, want_set in zip(got, want, strict=True):
                for g, w in zip(got_set, want_set, strict=True):
                    if variant == "int8":
                        assert g.tobytes() == w.tobytes()
                    else:
                        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-5 * float(np.abs(w).max()))
    finally:
        device.close()


def test_devices_check_passes_on_the_arm64_phone(arm64_phone, arm64_bundle, monkeypatch):
    monkeypatch.setenv("ANDROID_ADB_SERVER_PORT", "1")  # no adb server: only the tcp phone
    result = runner.invoke(app, ["devices", "--check", "--device", f"tcp:{arm64_phone.address}"])
    assert result.exit_code == 0, result.stdout + result.stderr
    assert "bundle android-arm64" in result.stdout
    assert f"tcp:{arm64_phone.address}: PASS (arm64-v8a, runner bundle arm64-v8a" in result.stdout


def test_a_bundle_without_glibcs_libm_fails_on_the_arm64_phone(arm64_phone, arm64_bundle, tmp_path, monkeypatch):
    """The arm64 phone hides every aarch64 system library: a bundle that leans on one fails there."""
    monkeypatch.setenv("ANDROID_ADB_SERVER_PORT", "1")
    monkeypatch.setenv(
        "POCKETBENCH_DEVICE_RUNNER", str(support.altered_bundle(arm64_bundle, tmp_path / "b", drop="libm.so.6"))
    )
    result = runner.invoke(app, ["devices", "--check", "--device", f"tcp:{arm64_phone.address}"])
    assert result.exit_code == 1
    assert "FAIL: fp32 run failed: loader exited 127: missing libm.so.6" in result.stdout


def test_reboot_mid_run_is_an_interruption_retried_once(arm64_phone, arm64_bundle, digits, tmp_path):
    ptes, inputs = digits
    device = AdbDevice(f"tcp:{arm64_phone.address}", timeout_floor_s=60, reconnect_wait_s=30)
    try:
        boot = device.health_check()
        job = BenchJob(pte=ptes["fp32"], inputs=inputs, warmup=0, iterations=1, min_seconds=3.0)
        assert device.benchmark(job).ok  # deployed: the next run only starts the runner
        threading.Timer(1.5, lambda: arm64_phone.reboot(down_s=1.0)).start()
        report = device.benchmark(job)
        assert report.ok, report.error
        assert report.raw["device_columns"]["interruptions"] == 1
        assert device.health_check() != boot
    finally:
        device.close()


def test_nothing_of_the_build_machine_is_left_in_the_phone_folder(arm64_phone, arm64_bundle, tmp_path):
    """The pushed folder is exactly the bundle: no temp names left, every file whole."""
    device = AdbDevice(f"tcp:{arm64_phone.address}")
    try:
        device.health_check()
        placed = Deployer(device.transport, device.device_id).ensure_runner(
            RunnerChoice("arm64-v8a", "bundle", arm64_bundle)
        )
        folder = placed.command[1].rsplit("/", 1)[0]
        listing = device.shell(f"ls -a {folder}").output.split()
        bundle = read_bundle(arm64_bundle)
        assert sorted(n for n in listing if n not in (".", "..")) == sorted(
            ["manifest.json", *(f.name for f in bundle.files)]
        )
        sums = device.shell(f"cd {folder} && sha256sum *").output
        assert {line.split()[1]: line.split()[0] for line in sums.splitlines()} == {
            **{f.name: f.sha256 for f in bundle.files},
            "manifest.json": bundle.bundle_id,
        }
    finally:
        device.close()
