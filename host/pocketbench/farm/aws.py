"""AWS Device Farm backend: the same measurements on phones in Amazon's lab, to scale past
the phones attached to one host.

One Device Farm run measures a batch of jobs on every device of a pool:
1. upload a test package (a zip of the Android runner, the `.pte` files and their input
   sets) and a generated test spec (YAML): `create_upload`, PUT to the presigned URL,
   then `get_upload` until SUCCEEDED (FAILED is an error carrying the service's message);
2. `schedule_run` on the device pool with a per-device job timeout. The APPIUM_WEB_PYTHON
   test type needs no APK: its custom-environment host runs our spec, which drives the
   runner over adb (`$DEVICEFARM_DEVICE_UDID`) exactly as the adb backend does;
3. `get_run` until COMPLETED, within an overall deadline — past it, `stop_run` and an error;
4. per job (device), `list_artifacts` and download the CUSTOMER_ARTIFACT zip (the spec's
   `$DEVICEFARM_LOG_DIR`), checking the HTTP status, and parse each runner JSON with
   `parse_runner_report`; `sweep.report_row` turns reports into the same rows as local runs.

Nothing here can reach AWS from the test machine: the tests drive this module through
botocore's `Stubber`, which validates every request against the real Device Farm service
model, and serve the presigned URLs from a local HTTP server on 127.0.0.1.
"""

from __future__ import annotations

import io
import json
import re
import shlex
import time
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pocketbench.devices.base import DeviceInfo
from pocketbench.errors import DeviceError, PocketbenchError
from pocketbench.runner.process import failed_report, runner_args
from pocketbench.runner.report import BenchJob, RunnerReport, RunnerReportError, parse_runner_report

DEVICE_DIR = "/data/local/tmp/pocketbench/aws"
TEST_TYPE = "APPIUM_WEB_PYTHON"
_JOB_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


@dataclass(frozen=True)
class DeviceFarmSettings:
    project_arn: str
    device_pool_arn: str
    job_timeout_minutes: int = 60  # per device, enforced by Device Farm
    deadline_s: float = 3 * 3600.0  # the whole run, enforced here (stop_run past it)
    poll_s: float = 30.0
    http_timeout_s: float = 300.0


@dataclass
class DeviceResults:
    """What one device of the pool measured: its identity and a report per job id."""

    info: DeviceInfo
    reports: dict[str, RunnerReport]
    outputs: dict[str, Path] = field(default_factory=dict)  # job id → output sets (PBTF)


class DeviceFarm:
    """A Device Farm project seen through a boto3 `devicefarm` client (region us-west-2)."""

    def __init__(
        self,
        client: Any,
        settings: DeviceFarmSettings,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client, self.settings, self.sleep, self.clock = client, settings, sleep, clock

    def measure(self, jobs: Mapping[str, BenchJob], runner: Path, into: Path, name: str) -> list[DeviceResults]:
        """Run `jobs` (by job id) on every device of the pool; files land under `into`."""
        package = self.upload(f"{name}.zip", build_test_package(jobs, runner), "APPIUM_WEB_PYTHON_TEST_PACKAGE")
        spec = self.upload(f"{name}.yml", build_test_spec(jobs).encode(), "APPIUM_WEB_PYTHON_TEST_SPEC")
        run_arn = self.schedule(package, spec, name)
        self.wait(run_arn)
        return self.collect(run_arn, list(jobs), into)

    def upload(self, name: str, data: bytes, upload_type: str) -> str:
        """Upload `data` and wait until Device Farm has processed it; returns its ARN."""
        content_type = "application/octet-stream"
        upload = self.client.create_upload(
            projectArn=self.settings.project_arn, name=name, type=upload_type, contentType=content_type
        )["upload"]
        _http("PUT", upload["url"], self.settings.http_timeout_s, data, content_type, what=f"upload of {name}")
        deadline = self.clock() + self.settings.deadline_s
        while True:
            upload = self.client.get_upload(arn=upload["arn"])["upload"]
            if upload["status"] == "SUCCEEDED":
                return upload["arn"]
            if upload["status"] == "FAILED":
                raise DeviceError(
                    f"Device Farm rejected upload {name}: {upload.get('message') or 'no reason given'}",
                    command="create_upload",
                    output=upload.get("metadata", ""),
                )
            if self.clock() >= deadline:
                raise DeviceError(f"Device Farm did not process upload {name} before the deadline")
            self.sleep(self.settings.poll_s)

    def schedule(self, package_arn: str, spec_arn: str, name: str) -> str:
        run = self.client.schedule_run(
            projectArn=self.settings.project_arn,
            devicePoolArn=self.settings.device_pool_arn,
            name=name,
            test={"type": TEST_TYPE, "testPackageArn": package_arn, "testSpecArn": spec_arn},
            executionConfiguration={"jobTimeoutMinutes": self.settings.job_timeout_minutes},
        )["run"]
        return run["arn"]

    def wait(self, run_arn: str) -> dict[str, Any]:
        """Poll until the run completes; past the deadline, stop it and fail."""
        deadline = self.clock() + self.settings.deadline_s
        while True:
            run = self.client.get_run(arn=run_arn)["run"]
            if run["status"] == "COMPLETED":
                return run
            if self.clock() >= deadline:
                self.client.stop_run(arn=run_arn)
                raise DeviceError(
                    f"Device Farm run {run_arn} still {run['status']} after {self.settings.deadline_s:.0f} s: "
                    "stopped it; raise deadline_s or shrink the matrix",
                    command="get_run",
                )
            self.sleep(self.settings.poll_s)

    def collect(self, run_arn: str, job_ids: list[str], into: Path) -> list[DeviceResults]:
        """Each device's reports from its CUSTOMER_ARTIFACT zip; a device whose artifacts
        lack a job's JSON gets a failed report saying so."""
        results = []
        for index, job in enumerate(_paged(self.client.list_jobs, "jobs", arn=run_arn)):
            info = _device_info(job)
            folder = into / f"device-{index:02d}"
            folder.mkdir(parents=True, exist_ok=True)
            files = self._customer_files(job["arn"])
            reports, outputs = {}, {}
            for job_id in job_ids:
                text = files.get(f"{job_id}.json")
                reports[job_id] = _report(text, job, job_id)
                if f"{job_id}.out.pbtf" in files:
                    outputs[job_id] = folder / f"{job_id}.out.pbtf"
                    outputs[job_id].write_bytes(files[f"{job_id}.out.pbtf"])
            results.append(DeviceResults(info, reports, outputs))
        return results

    def _customer_files(self, job_arn: str) -> dict[str, bytes]:
        """Our files in the job's customer artifacts, by base name (never extracted by path)."""
        found: dict[str, bytes] = {}
        for artifact in _paged(self.client.list_artifacts, "artifacts", arn=job_arn, type="FILE"):
            if artifact.get("type") != "CUSTOMER_ARTIFACT":
                continue
            data = _http("GET", artifact["url"], self.settings.http_timeout_s, what=f"artifact {artifact['name']}")
            try:
                archive = zipfile.ZipFile(io.BytesIO(data))
            except zipfile.BadZipFile as exc:
                raise DeviceError(f"artifact {artifact['name']} of {job_arn} is not a zip: {exc}") from exc
            for member in archive.namelist():
                base = member.rsplit("/", 1)[-1]
                if "/pocketbench/" in f"/{member}" and re.fullmatch(r"[A-Za-z0-9_-]{1,64}(\.json|\.out\.pbtf)", base):
                    found[base] = archive.read(member)
        return found


def build_test_package(jobs: Mapping[str, BenchJob], runner: Path) -> bytes:
    """The test package zip: runner, `.pte` and input files under pocketbench/, named by job id
    (plus the empty tests/ and requirements.txt the APPIUM_WEB_PYTHON package type expects)."""
    _check_ids(jobs)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("requirements.txt", "")
        archive.writestr("tests/test_pocketbench.py", "# the test spec drives the runner over adb\n")
        archive.write(runner, "pocketbench/pocket_runner")
        for job_id, job in jobs.items():
            archive.write(job.pte, f"pocketbench/{job_id}.pte")
            archive.write(job.inputs, f"pocketbench/{job_id}.in.pbtf")
    return buffer.getvalue()


def build_test_spec(jobs: Mapping[str, BenchJob]) -> str:
    """The Device Farm test spec (YAML). Every command is a JSON string (valid YAML), every
    value reaching a shell is shlex-quoted, and device paths stay under DEVICE_DIR."""
    _check_ids(jobs)
    adb = 'adb -s "$DEVICEFARM_DEVICE_UDID"'
    q = shlex.quote
    setup = [
        'mkdir -p "$DEVICEFARM_LOG_DIR/pocketbench"',
        f"{adb} shell {q(f'rm -rf {DEVICE_DIR} && mkdir -p {DEVICE_DIR}')}",
        f'{adb} push "$DEVICEFARM_TEST_PACKAGE_PATH/pocketbench/." {DEVICE_DIR}/',
        f"{adb} shell chmod 755 {DEVICE_DIR}/pocket_runner",
    ]
    test = []
    for job_id, job in jobs.items():
        args = runner_args(job, f"{job_id}.pte", f"{job_id}.in.pbtf", f"{job_id}.out.pbtf", f"{job_id}.json")
        on_device = f"cd {DEVICE_DIR} && ./pocket_runner {shlex.join(args)}"
        test += [
            f"{adb} shell {q(on_device)} || true",  # a failing cell still leaves its JSON
            f'{adb} pull {DEVICE_DIR}/{job_id}.json "$DEVICEFARM_LOG_DIR/pocketbench/" || true',
            f'{adb} pull {DEVICE_DIR}/{job_id}.out.pbtf "$DEVICEFARM_LOG_DIR/pocketbench/" || true',
        ]
    phases = {
        "install": ["echo pocketbench"],
        "pre_test": setup,
        "test": test,
        "post_test": [f"{adb} shell rm -rf {DEVICE_DIR}"],
    }
    lines = ["version: 0.1", "phases:"]
    for phase, commands in phases.items():
        lines += [f"  {phase}:", "    commands:"] + [f"      - {json.dumps(c)}" for c in commands]
    lines += ["artifacts:", "  - $DEVICEFARM_LOG_DIR"]
    return "\n".join(lines) + "\n"


def _check_ids(jobs: Mapping[str, BenchJob]) -> None:
    bad = [j for j in jobs if not _JOB_ID.match(j)]
    if bad:
        raise PocketbenchError(f"job ids {bad} are not safe file names: use letters, digits, _ and -")


def _report(text: bytes | None, job: dict[str, Any], job_id: str) -> RunnerReport:
    if text is None:
        return failed_report(
            "device_error", f"{job_id}: no runner JSON in the artifacts of {job['name']}", "native-runner"
        )
    try:
        return parse_runner_report(text.decode(), backend="native-runner")
    except (RunnerReportError, UnicodeDecodeError) as exc:
        return failed_report("device_error", f"{job_id} on {job['name']}: {exc}", "native-runner")


def _device_info(job: dict[str, Any]) -> DeviceInfo:
    device = job.get("device") or {}
    cpu = device.get("cpu") or {}
    return DeviceInfo(
        device_id=device.get("arn") or job["arn"],
        kind="aws-device-farm",
        model=" ".join(x for x in (device.get("manufacturer"), device.get("model")) if x) or job["name"],
        abi=cpu.get("architecture", ""),
        os=f"{device.get('platform', '')} {device.get('os', '')}".strip(),
        cpu=cpu.get("frequency", ""),
        extra={"job_result": str(job.get("result", "")), "job_arn": job["arn"]},
    )


def _paged(call: Callable[..., dict[str, Any]], key: str, **kwargs: Any) -> list[dict[str, Any]]:
    items, token = [], None
    while True:
        page = call(**kwargs, **({"nextToken": token} if token else {}))
        items += page.get(key, [])
        token = page.get("nextToken")
        if not token:
            return items


def _http(
    method: str, url: str, timeout_s: float, data: bytes | None = None, content_type: str = "", what: str = ""
) -> bytes:
    """One HTTP transfer to a presigned URL; anything but 200 is an error naming it."""
    request = urllib.request.Request(url, data=data, method=method)
    if content_type:
        request.add_header("Content-Type", content_type)
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            body = response.read()
            status = response.status
    except urllib.error.HTTPError as exc:
        raise DeviceError(
            f"{what} failed: HTTP {exc.code} {exc.reason}",
            command=f"{method} {url.split('?')[0]}",
            output=exc.read()[:500].decode(errors="replace"),
        ) from exc
    except (urllib.error.URLError, OSError) as exc:
        raise DeviceError(f"{what} failed: {exc}", command=f"{method} {url.split('?')[0]}") from exc
    if status != 200:
        raise DeviceError(f"{what} failed: HTTP {status}", command=f"{method} {url.split('?')[0]}")
    return body
