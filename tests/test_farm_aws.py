"""AWS Device Farm backend against botocore's Stubber (the real service model validates every
request and response) with presigned URLs served by a real HTTP server on 127.0.0.1.

AWS itself is not reachable from here: these tests prove the calls, their order, the polling,
deadlines and downloads, and that real runner JSON becomes the same rows as a local run.
"""

from __future__ import annotations

import io
import json
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import boto3
import pytest
import yaml
from botocore.stub import Stubber
from pocketbench.devices.local import LocalDevice
from pocketbench.errors import DeviceError
from pocketbench.farm.aws import DEVICE_DIR, DeviceFarm, DeviceFarmSettings, build_test_package, build_test_spec
from pocketbench.measure.sweep import base_row, load_model, prepare_variant, report_row
from pocketbench.progress import Reporter
from pocketbench.runner.report import BenchJob

from tests.farm_support import write_models

PROJECT = "arn:aws:devicefarm:us-west-2:123456789012:project:5e01a8c7-c861-4c0a-b1d5-5ec6e6c6dd23"
POOL = "arn:aws:devicefarm:us-west-2:123456789012:devicepool:5e01a8c7-c861-4c0a-b1d5-5ec6e6c6dd23/71e0c5f2"
RUN = "arn:aws:devicefarm:us-west-2:123456789012:run:5e01a8c7-c861-4c0a-b1d5-5ec6e6c6dd23/0f2a"
JOB = "arn:aws:devicefarm:us-west-2:123456789012:job:5e01a8c7-c861-4c0a-b1d5-5ec6e6c6dd23/0f2a/00000"
UPLOAD = "arn:aws:devicefarm:us-west-2:123456789012:upload:5e01a8c7-c861-4c0a-b1d5-5ec6e6c6dd23/"


class Bucket(BaseHTTPRequestHandler):
    """Presigned-URL stand-in: PUT stores the body, GET serves stored bytes; `status` overrides."""

    store: ClassVar[dict[str, bytes]] = {}
    status: ClassVar[dict[str, int]] = {}

    def do_PUT(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        code = self.status.get(self.path, 200)
        if code == 200:
            self.store[self.path] = body
        self._reply(code, b"")

    def do_GET(self):
        code = self.status.get(self.path, 200 if self.path in self.store else 404)
        self._reply(code, self.store.get(self.path, b"") if code == 200 else b"<Error/>")

    def _reply(self, code, body):
        self.send_response(code)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def bucket():
    Bucket.store, Bucket.status = {}, {}
    server = ThreadingHTTPServer(("127.0.0.1", 0), Bucket)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}", Bucket
    server.shutdown()
    server.server_close()


class Clock:
    def __init__(self):
        self.now = 0.0

    def sleep(self, seconds):
        self.now += seconds


@pytest.fixture
def farm():
    client = boto3.client("devicefarm", region_name="us-west-2", aws_access_key_id="test", aws_secret_access_key="test")
    clock = Clock()
    settings = DeviceFarmSettings(PROJECT, POOL, job_timeout_minutes=20, deadline_s=100, poll_s=30)
    with Stubber(client) as stub:
        yield DeviceFarm(client, settings, sleep=clock.sleep, clock=lambda: clock.now), stub, clock
        stub.assert_no_pending_responses()


@pytest.fixture(scope="module")
def measured(tmp_path_factory):
    """A real local measurement of a small model: its context, prepared row, job, report."""
    folder = tmp_path_factory.mktemp("aws-model")
    models = write_models(folder)
    context = load_model(f"{models}:small", folder, Reporter())
    prepared, artifact = prepare_variant(context, "fp32", {}, Reporter())
    job = BenchJob(artifact.path, context.inputs_file, warmup=1, iterations=6, outputs=folder / "local.out.pbtf")
    report = LocalDevice().benchmark(job)
    assert report.ok, report.error
    return context, prepared, job, report


def _upload(stub, name, kind, url, statuses):
    arn = UPLOAD + name.replace(".", "-").ljust(8, "0")
    stub.add_response(
        "create_upload",
        {"upload": {"arn": arn, "name": name, "type": kind, "status": "INITIALIZED", "url": url}},
        {"projectArn": PROJECT, "name": name, "type": kind, "contentType": "application/octet-stream"},
    )
    for status in statuses:
        reply = {"arn": arn, "name": name, "type": kind, "status": status}
        if status == "FAILED":
            reply["message"] = "Invalid test package: tests/ has no test files"
        stub.add_response("get_upload", {"upload": reply}, {"arn": arn})
    return arn


def _customer_zip(job_id, report, outputs):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        prefix = "Host_Machine_Files/$DEVICEFARM_LOG_DIR/pocketbench/"
        archive.writestr(prefix + f"{job_id}.json", json.dumps(report.raw))
        archive.writestr(prefix + f"{job_id}.out.pbtf", outputs.read_bytes())
        archive.writestr("../../pocketbench/escape.json", "{}")  # hostile member: never used
    return buffer.getvalue()


def test_a_whole_run_becomes_the_same_rows_as_a_local_run(farm, bucket, measured, tmp_path):
    backend, stub, clock = farm
    base_url, server = bucket
    store = server.store
    context, prepared, job, report = measured
    runner = tmp_path / "pocket_runner"
    runner.write_bytes(b"\x7fELF stand-in for the aarch64 runner")
    package = _upload(
        stub, "night.zip", "APPIUM_WEB_PYTHON_TEST_PACKAGE", f"{base_url}/up/pkg", ["PROCESSING", "SUCCEEDED"]
    )
    spec = _upload(stub, "night.yml", "APPIUM_WEB_PYTHON_TEST_SPEC", f"{base_url}/up/spec", ["SUCCEEDED"])
    stub.add_response(
        "schedule_run",
        {"run": {"arn": RUN, "status": "SCHEDULING"}},
        {
            "projectArn": PROJECT,
            "devicePoolArn": POOL,
            "name": "night",
            "test": {"type": "APPIUM_WEB_PYTHON", "testPackageArn": package, "testSpecArn": spec},
            "executionConfiguration": {"jobTimeoutMinutes": 20},
        },
    )
    for status in ("PENDING", "RUNNING", "COMPLETED"):
        stub.add_response("get_run", {"run": {"arn": RUN, "status": status}}, {"arn": RUN})
    device = {
        "arn": "arn:aws:devicefarm:us-west-2::device:70D5B22608A149568923E4A225EC5D04",
        "name": "Google Pixel 8",
        "manufacturer": "Google",
        "model": "Pixel 8",
        "platform": "ANDROID",
        "os": "14",
        "cpu": {"frequency": "MHz", "architecture": "arm64-v8a", "clock": 2915.0},
    }
    stub.add_response(
        "list_jobs",
        {"jobs": [{"arn": JOB, "name": "Google Pixel 8", "status": "COMPLETED", "result": "PASSED", "device": device}]},
        {"arn": RUN},
    )
    store["/dl/customer.zip"] = _customer_zip("j0001", report, job.outputs)
    artifacts = [
        {
            "arn": JOB.replace(":job:", ":artifact:") + "/1",
            "name": "Customer Artifacts",
            "type": "CUSTOMER_ARTIFACT",
            "extension": "zip",
            "url": f"{base_url}/dl/customer.zip",
        },
        {
            "arn": JOB.replace(":job:", ":artifact:") + "/2",
            "name": "Logcat",
            "type": "DEVICE_LOG",
            "extension": "txt",
            "url": f"{base_url}/dl/logcat",
        },
    ]
    stub.add_response("list_artifacts", {"artifacts": artifacts}, {"arn": JOB, "type": "FILE"})

    results = backend.measure({"j0001": job}, runner, tmp_path / "aws", "night")

    with zipfile.ZipFile(io.BytesIO(store["/up/pkg"])) as uploaded:
        assert uploaded.read("pocketbench/pocket_runner") == runner.read_bytes()
        assert uploaded.read("pocketbench/j0001.pte") == job.pte.read_bytes()
    assert store["/up/spec"].decode() == build_test_spec({"j0001": job})
    assert clock.now == 3 * 30  # one poll past PROCESSING (upload), two past PENDING and RUNNING (run)
    (device_results,) = results
    assert device_results.info.model == "Google Pixel 8"
    assert device_results.info.abi == "arm64-v8a"
    assert device_results.reports["j0001"].iterations_ns == report.iterations_ns
    assert not (tmp_path / "pocketbench" / "escape.json").exists()

    base = base_row("aws-night", context.spec.name, "fp32", "pixel-8", device_results.info)
    row = report_row(context, {**base, **prepared}, device_results.reports["j0001"], device_results.outputs["j0001"])
    local = report_row(context, {**base, **prepared}, report, job.outputs)
    assert row["status"] == "ok"
    assert row.keys() == local.keys()
    assert row["latency_p50_ms"] == local["latency_p50_ms"]
    assert row["top1_agreement"] == 1.0
    assert row["device_model"] == "Google Pixel 8"


def test_a_failed_upload_is_an_error_with_the_service_message(farm, bucket):
    backend, stub, _ = farm
    base_url, _ = bucket
    _upload(stub, "night.zip", "APPIUM_WEB_PYTHON_TEST_PACKAGE", f"{base_url}/up/pkg", ["PROCESSING", "FAILED"])
    with pytest.raises(DeviceError, match=r"rejected upload night\.zip: Invalid test package"):
        backend.upload("night.zip", b"zip", "APPIUM_WEB_PYTHON_TEST_PACKAGE")


def test_a_refused_transfer_is_an_error_with_the_http_status(farm, bucket):
    backend, stub, _ = farm
    base_url, server = bucket
    server.status["/up/pkg"] = 403
    arn = UPLOAD + "night-zip"
    stub.add_response(
        "create_upload",
        {"upload": {"arn": arn, "name": "night.zip", "status": "INITIALIZED", "url": f"{base_url}/up/pkg"}},
        {
            "projectArn": PROJECT,
            "name": "night.zip",
            "type": "APPIUM_WEB_PYTHON_TEST_PACKAGE",
            "contentType": "application/octet-stream",
        },
    )
    with pytest.raises(DeviceError, match=r"upload of night\.zip failed: HTTP 403"):
        backend.upload("night.zip", b"zip", "APPIUM_WEB_PYTHON_TEST_PACKAGE")


def test_a_run_past_its_deadline_is_stopped(farm):
    backend, stub, clock = farm
    for _ in range(5):  # t = 0, 30, 60, 90, 120 s: the deadline is 100 s
        stub.add_response("get_run", {"run": {"arn": RUN, "status": "RUNNING"}}, {"arn": RUN})
    stub.add_response("stop_run", {"run": {"arn": RUN, "status": "STOPPING"}}, {"arn": RUN})
    with pytest.raises(DeviceError, match="still RUNNING after 100 s: stopped it"):
        backend.wait(RUN)
    assert clock.now == 120


def test_a_missing_artifact_download_is_an_error(farm, bucket):
    backend, stub, _ = farm
    base_url, _ = bucket
    stub.add_response("list_jobs", {"jobs": [{"arn": JOB, "name": "Pixel"}]}, {"arn": RUN})
    artifact = {
        "arn": JOB.replace(":job:", ":artifact:") + "/1",
        "name": "Customer Artifacts",
        "type": "CUSTOMER_ARTIFACT",
        "extension": "zip",
        "url": f"{base_url}/dl/gone.zip",
    }
    stub.add_response("list_artifacts", {"artifacts": [artifact]}, {"arn": JOB, "type": "FILE"})
    with pytest.raises(DeviceError, match="artifact Customer Artifacts failed: HTTP 404"):
        backend.collect(RUN, ["j0001"], Path("/tmp"))


def test_the_spec_quotes_everything_and_stays_in_the_work_dir(measured, tmp_path):
    _, _, job, _ = measured
    spec = yaml.safe_load(build_test_spec({"j0001": job, "j0002": job}))
    assert spec["artifacts"] == ["$DEVICEFARM_LOG_DIR"]
    commands = spec["phases"]["test"]["commands"]
    assert len(commands) == 6
    assert commands[0].startswith('adb -s "$DEVICEFARM_DEVICE_UDID" shell \'cd /data/local/tmp/pocketbench/aws && ')
    assert "--model j0001.pte --method forward --inputs j0001.in.pbtf" in commands[0]
    assert all(DEVICE_DIR in c for c in commands)
    with pytest.raises(Exception, match="not safe file names"):
        build_test_spec({"$(reboot)": job})
    with pytest.raises(Exception, match="not safe file names"):
        build_test_package({"../x": job}, job.pte)
