"""A phone over adb as a pocketbench Device: identity, deployment, pinned runs, faults handled.

Seams other parts build on (keep them stable):
- `AdbDevice.shell(command, timeout_s) -> ShellResult`: run a shell command on the phone and get
  its output and exit status (energy/thermal/memory sampling uses this). Quote what you pass.
- `AdbDevice.health_check(wait_s) -> str`: reconnect and wait until the phone is booted and
  answering; returns its boot id (a farm calls it between cells; a new id means it rebooted).
- `AdbDevice.lease`: the DeviceLease held while benchmarking (acquired on the first cell,
  released by `close()` or process exit), and `AdbDevice.phone_lease`, its twin kept on the phone
  for coordinators on other hosts (phone_lease.py; released by `close()`, else it expires).
- `AdbDevice.take_lease(wait_s)`: take both before the first cell (a farm does, to say at once
  that another coordinator holds the phone).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import struct
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TypeVar

from pocketbench.devices.adb import identity as ident
from pocketbench.devices.adb.deploy import RUNS_DIR, Deployer, RunnerOnPhone, confined, q
from pocketbench.devices.adb.launch_errors import RSEQ_HEDGE, SIGSYS_EXIT, explain_launch_failure, seccomp_failure
from pocketbench.devices.adb.lease import DeviceLease
from pocketbench.devices.adb.phone_lease import PhoneLease
from pocketbench.devices.adb.runner_choice import built_runner
from pocketbench.devices.adb.transport import (
    ConnectionLost,
    NetworkTransport,
    ServerUnreachable,
    ShellResult,
    Transport,
    Unauthorized,
)
from pocketbench.devices.base import DeviceInfo
from pocketbench.devices.bundle.manifest import read_bundle, sha256_file
from pocketbench.errors import DeviceError
from pocketbench.runner.process import failed_report, report_from_exit, runner_args
from pocketbench.runner.report import BenchJob, RunnerReport
from pocketbench.runner.schema import RunnerStatus

BACKEND = "native-runner"
BOOT_ID = "/proc/sys/kernel/random/boot_id"
PUSH_ATTEMPTS = 3
TRACE_NAME = "trace.etdp"  # the runner's ETDump in the run's folder on the phone (profiling runs)


T = TypeVar("T")


class Interrupted(Exception):
    """The phone rebooted while the runner ran: the measurement is gone."""


def open_transport(spec: str, key_path: Path | None = None, server_port: int | None = None) -> Transport:
    """tcp:HOST:PORT and usb:SERIAL go straight to adbd; adb:SERIAL goes through this computer's adb
    server, adb://HOST:PORT/SERIAL through that host's."""
    if spec.startswith("adb:"):
        from pocketbench.devices.adb.server_route import AdbServerTransport

        return AdbServerTransport(spec, port=server_port)
    from pocketbench.devices.adb.shell_route import AdbShellTransport

    return AdbShellTransport(spec, key_path=key_path)


def input_sets(path: Path) -> int:
    """Number of input sets in a PBTF file (its header), for the run's time budget."""
    with open(path, "rb") as handle:
        header = handle.read(16)
    return struct.unpack("<4sIII", header)[2] if len(header) == 16 else 1


class AdbDevice:
    """One phone. No I/O in construction; the first call connects.

    The run timeout is derived from the job: `timeout_floor_s + 3 × (warmup + iterations +
    input sets + 1) × iteration_budget_s + 3 × min_seconds`. The runner runs detached on the
    phone and is polled with short commands, so adb-shell's read timeout never sees a long run.
    """

    kind = "adb"

    def __init__(
        self,
        spec: str,
        *,
        transport: Transport | None = None,
        key_path: Path | None = None,
        server_port: int | None = None,
        timeout_floor_s: float = 60.0,
        iteration_budget_s: float = 1.0,
        reconnect_wait_s: float = 60.0,
        lease_wait_s: float | None = None,
        poll_s: float = 0.2,
    ):
        self.device_id = spec
        self.transport = transport or open_transport(spec, key_path, server_port)
        self.timeout_floor_s = timeout_floor_s
        self.iteration_budget_s = iteration_budget_s
        self.reconnect_wait_s = reconnect_wait_s
        self.lease_wait_s = (
            lease_wait_s if lease_wait_s is not None else float(os.environ.get("POCKETBENCH_LEASE_WAIT_S", 60))
        )
        self.poll_s = poll_s
        self.lease: DeviceLease | None = None
        self.phone_lease: PhoneLease | None = None
        self._identity: ident.PhoneIdentity | None = None
        self._clusters: list[ident.Cluster] = []
        self._deployer: Deployer | None = None
        self._swept = False
        self._runner_columns: dict[str, str | int | float] = {}  # which runner, and what placing it cost this session

    # -- seams -----------------------------------------------------------------------
    def shell(self, command: str, timeout_s: float = 30.0, retry: bool = True) -> ShellResult:
        """Run `command` on the phone; on a dropped link reconnect and (if `retry`) run it again."""
        try:
            return self.transport.shell(command, timeout_s)
        except ConnectionLost:
            if not retry:
                raise
            self.health_check()
            return self.transport.shell(command, timeout_s)

    def health_check(self, wait_s: float | None = None) -> str:
        """Reconnect until the phone answers and has booted; its boot id. Unauthorized fails at once."""
        waited = self.reconnect_wait_s if wait_s is None else wait_s
        deadline = time.monotonic() + waited
        last: Exception | None = None
        while True:
            try:
                result = self.transport.shell(f"getprop sys.boot_completed; cat {BOOT_ID}", timeout_s=10)
                lines = result.output.split()
                if result.ok and len(lines) == 2 and lines[0] == "1":
                    return lines[1]
                last = DeviceError(f"phone {self.device_id} is still booting", serial=self.device_id)
            except Unauthorized:
                raise
            except DeviceError as exc:
                last = exc
                self.transport.close()
                if isinstance(self.transport, NetworkTransport):
                    self.transport.reconnect_network()
            if time.monotonic() >= deadline:
                # The whole host's server gone is said as such: the farm stops that host's phones.
                error = ServerUnreachable if isinstance(last, ServerUnreachable) else DeviceError
                raise error(
                    f"phone {self.device_id} did not come back within {waited:.0f} s ({last});"
                    " check the cable / wireless debugging, then rerun",
                    serial=self.device_id,
                )
            time.sleep(0.5)

    def close(self) -> None:
        if self.phone_lease is not None:
            lease, self.phone_lease = self.phone_lease, None
            with contextlib.suppress(DeviceError):  # unreachable: it expires, or our next run breaks it
                lease.release()
        if self.lease is not None:
            self.lease.release()
            self.lease = None
        self.transport.close()

    def take_lease(self, wait_s: float | None = None) -> None:
        """Hold the phone: this computer's lock on its serial, then the lease on the phone that
        other hosts' coordinators see (raises LeaseHeld naming the holder after `wait_s`)."""
        wait_s = self.lease_wait_s if wait_s is None else wait_s
        phone = self.identity()
        if self.lease is None:
            self.lease = DeviceLease(phone.serial or self.device_id, wait_s=wait_s).acquire()
        if self.phone_lease is None:
            lease = PhoneLease(lambda command, timeout_s: self.shell(command, timeout_s), self.device_id, wait_s)
            self.phone_lease = lease.acquire()
        else:
            self.phone_lease.renew()

    # -- identity --------------------------------------------------------------------
    def identity(self) -> ident.PhoneIdentity:
        if self._identity is None:
            props = ident.parse_getprop(self._checked("getprop").output)
            self._identity = ident.identity_from_props(props)
            self._clusters = ident.parse_clusters(self._checked(ident.PROBE_CLUSTERS).output)
        return self._identity

    def core_threads(self, cores: str | None) -> tuple[int, str]:
        """One thread per core the runner is pinned to (devices/base.CorePolicyDevice)."""
        self.identity()
        placement = ident.place_cores(self._clusters, cores or ident.DEFAULT_CORES)
        if not placement.cpus:
            return 0, "the phone shows no cpufreq clusters, so nothing is pinned: the runtime's own thread count"
        return len(placement.cpus), placement.reason()

    def info(self) -> DeviceInfo:
        phone = self.identity()
        status, capacity = ident.parse_battery(self.shell(ident.PROBE_BATTERY).output)
        big = ident.big_cores(self._clusters)
        return DeviceInfo(
            device_id=self.device_id,
            kind=self.kind,
            model=f"{phone.manufacturer} {phone.model}".strip(),
            abi=phone.abi,
            os=phone.os,
            cpu=f"{phone.soc} ({ident.describe_clusters(self._clusters)})" if self._clusters else phone.soc,
            emulated=phone.emulated,
            emulation=phone.emulation,
            extra={
                "serial": phone.serial,
                "soc": phone.soc,
                "fingerprint": phone.fingerprint,
                "cpu_clusters": ident.describe_clusters(self._clusters),
                "big_cores": ",".join(str(c) for c in big),
                "cpu_mask": ident.cpu_mask(big),
                "battery_status": status,
                "battery_pct": capacity,
                "route": self.device_id.split(":", 1)[0],
                "adb_server": str(server) if (server := getattr(self.transport, "server", None)) else "",
            },
        )

    def _checked(self, command: str, timeout_s: float = 30.0) -> ShellResult:
        result = self.shell(command, timeout_s)
        if not result.ok:
            raise DeviceError(
                f"phone {self.device_id}: `{command[:60]}` failed ({result.exit_code}): {result.output.strip()[:200]}",
                command=command,
                output=result.output,
                serial=self.device_id,
            )
        return result

    # -- measuring -------------------------------------------------------------------
    def run_timeout_s(self, job: BenchJob) -> float:
        steps = job.warmup + job.iterations + input_sets(job.inputs) + 1
        batches_s = (job.iterations + 8) * job.batch_min_ms / 1000  # calibrated samples last ≥ batch_min_ms
        return self.timeout_floor_s + 3 * steps * self.iteration_budget_s + 3 * (job.min_seconds + batches_s)

    def benchmark(self, job: BenchJob) -> RunnerReport:
        boot_id = self.health_check()
        self.take_lease()
        if self._deployer is None:
            self._deployer = Deployer(self.transport, self.device_id)
        if not self._swept:
            self._deployer.sweep_stale()
            self._swept = True
        interruptions, repairs_before = 0, len(self._deployer.repairs)
        while True:
            try:
                report = self._run_once(job, boot_id)
                if report.raw.get("launch_failed"):
                    report = self._repair_and_retry(job, boot_id, report)
                break
            except Interrupted as exc:
                interruptions += 1
                boot_id = self.health_check()
                self._deployer.known.clear()  # re-verify what is on the phone after a reboot
                if interruptions > 1:
                    report = failed_report(
                        RunnerStatus.INTERRUPTED, f"phone {self.device_id}: {exc} (twice; not retried again)", BACKEND
                    )
                    break
        columns = report.raw.setdefault("device_columns", {})
        columns["interruptions"] = interruptions
        columns.update(self._runner_columns)
        columns["device_repairs"] = "; ".join(self._deployer.repairs[repairs_before:]) or None
        columns["device_retried"] = bool(report.raw.get("retried"))
        return report

    def _repair_and_retry(self, job: BenchJob, boot_id: str, failed: RunnerReport) -> RunnerReport:
        """The runner could not start: hash its files on the phone again, push what is damaged or
        missing and run once more; with nothing to repair, the failure stands (and a SIGSYS death
        is put to the phone to name the syscall)."""
        assert self._deployer is not None
        choice = built_runner(self.identity().abi)
        deployer = self._deployer
        if choice.is_bundle:
            bundle = read_bundle(choice.path)
            repaired = self._retrying(lambda: deployer.recheck_bundle(bundle))
        else:
            before = len(deployer.repairs)
            deployer.known.pop(sha256_file(choice.path), None)
            self.place_runner()
            repaired = deployer.repairs[before:]
        if repaired:
            retried = self._run_once(job, boot_id)
            retried.raw["retried"] = True
            return retried
        if failed.raw.get("exit_status") == SIGSYS_EXIT:
            return replace(failed, error=seccomp_failure(self.seccomp_syscall()))
        return failed

    def seccomp_syscall(self) -> str | None:
        """Which syscall a seccomp filter killed the runner for, found by experiment: rseq when the
        runner dies of SIGSYS before its first line unless glibc's rseq is turned off."""
        runner = " ".join(q(a) for a in self.place_runner().command)
        probe = f"{runner} --help >/dev/null 2>&1; a=$?; {RSEQ_HEDGE} {runner} --help >/dev/null 2>&1; echo $a $?"
        codes = self.shell(probe, timeout_s=60).output.split()
        return "rseq" if codes == [str(SIGSYS_EXIT), "0"] else None

    def _deploy(self, local: Path, name: str, executable: bool = False) -> str:
        assert self._deployer is not None
        deployer = self._deployer
        return self._retrying(lambda: deployer.ensure(local, name, executable))

    def _retrying(self, push: Callable[[], T]) -> T:
        """Push with bounded retries: a dropped link redoes the push from scratch."""
        for attempt in range(PUSH_ATTEMPTS):
            try:
                return push()
            except ConnectionLost:
                if attempt == PUSH_ATTEMPTS - 1:
                    raise
                self.health_check()
        raise AssertionError("unreachable")

    def place_runner(self) -> RunnerOnPhone:
        """The phone's runner on the phone (checked once per session, pushed only when missing);
        the run's device columns say which runner and what placing it cost."""
        assert self._deployer is not None
        deployer, choice = self._deployer, built_runner(self.identity().abi)
        placed = self._retrying(lambda: deployer.ensure_runner(choice))
        if placed.checked:
            cost = self._runner_columns
            cost["device_runner"] = placed.description
            cost["device_runner_pushed_bytes"] = int(cost.get("device_runner_pushed_bytes", 0)) + placed.pushed_bytes
            cost["device_runner_deploy_s"] = float(cost.get("device_runner_deploy_s", 0.0)) + placed.seconds
        return placed

    def _run_once(self, job: BenchJob, boot_id: str) -> RunnerReport:
        runner = self.place_runner().command
        pte = self._deploy(job.pte, "model.pte")
        inputs = self._deploy(job.inputs, "inputs.pbtf")
        placement = ident.place_cores(self._clusters, job.cores or ident.DEFAULT_CORES)
        threads = job.threads
        run_dir = f"{RUNS_DIR}/{secrets.token_hex(8)}"
        args = runner_args(
            replace(job, threads=threads),
            pte,
            inputs,
            "outputs.pbtf" if job.outputs else None,
            "result.json",
            TRACE_NAME if job.etdump else None,
        )
        pin = f"taskset {placement.mask} " if placement.cpus else ""
        inner = (
            f"trap '' HUP; {pin}{' '.join(q(a) for a in (*runner, *args))} >stdout 2>stderr </dev/null &"
            " echo $! > runner.pid; wait $!; echo $? > rc.tmp; mv rc.tmp rc"
        )
        # Detached (own session, HUP ignored): a dropped link or adb's hang-up cannot kill the run.
        launch = (
            f"mkdir -p {q(run_dir)} && cd {q(run_dir)} && cat {BOOT_ID} > boot_id || exit 1\n"
            "if command -v setsid >/dev/null; then S=setsid; else S=nohup; fi\n"
            f"$S sh -c {q(inner)} </dev/null >/dev/null 2>&1 &\n"
            "echo $! > wrapper.pid"
        )
        self._launch(launch)
        timeout_s = self.run_timeout_s(job)
        rc = self._wait_for_exit(run_dir, boot_id, timeout_s)
        try:
            if rc is None:
                self._kill(run_dir)
                return failed_report(
                    RunnerStatus.TIMEOUT,
                    f"runner did not finish within {timeout_s:.0f} s on {self.device_id}; killed it",
                    BACKEND,
                )
            return self._collect(job, run_dir, rc, placement)
        finally:
            self.shell(f"rm -rf {q(run_dir)}", retry=True)

    def _launch(self, command: str) -> None:
        try:
            result = self.transport.shell(command, timeout_s=30)
        except ConnectionLost as exc:
            raise Interrupted(f"link lost while starting the runner ({exc})") from exc
        if not result.ok:
            raise DeviceError(
                f"phone {self.device_id}: cannot start the runner: {result.output.strip()}", serial=self.device_id
            )

    def _wait_for_exit(self, run_dir: str, boot_id: str, timeout_s: float) -> int | None:
        """The runner's exit status, or None on timeout; a reboot meanwhile raises Interrupted."""
        deadline = time.monotonic() + timeout_s
        delay = self.poll_s
        while time.monotonic() < deadline:
            try:
                if self.phone_lease is not None:
                    self.phone_lease.renew()  # a long run keeps the phone
                result = self.transport.shell(f"cat {q(run_dir)}/rc 2>/dev/null", timeout_s=10)
                if result.ok and result.output.strip().isdigit():
                    return int(result.output.strip())
            except ConnectionLost:
                if self.health_check() != boot_id:
                    raise Interrupted("the phone rebooted during the run") from None
            time.sleep(delay)
            delay = min(delay * 1.5, 1.0)
        return None

    def _kill(self, run_dir: str) -> None:
        """Kill the runner and its wrapper on the phone, and make sure they are gone."""
        pids = f"$(cat {q(run_dir)}/runner.pid 2>/dev/null) $(cat {q(run_dir)}/wrapper.pid 2>/dev/null)"
        self.shell(f"for p in {pids}; do kill -9 $p 2>/dev/null; done; true")
        for _ in range(50):
            alive = self.shell(f"for p in {pids}; do kill -0 $p 2>/dev/null && echo $p; done; true").output.strip()
            if not alive:
                return
            time.sleep(0.1)
        raise DeviceError(f"phone {self.device_id}: the runner (pid {alive}) survived kill -9", serial=self.device_id)

    def _pull_whole(self, remote: str, target: Path) -> None:
        """Pull beside the target, then rename: the file is complete or absent, never half-written."""
        part = target.with_name(f".{target.name}.{os.getpid()}.part")
        try:
            self.transport.pull(remote, part)
            os.replace(part, target)
        finally:
            part.unlink(missing_ok=True)

    def _collect(self, job: BenchJob, run_dir: str, rc: int, placement: ident.CorePlacement) -> RunnerReport:
        stderr = self.shell(f"tail -c 4000 {q(run_dir)}/stderr 2>/dev/null; true").output
        json_text = None
        if self.transport.stat(f"{run_dir}/result.json") is not None:
            with tempfile.TemporaryDirectory(prefix="pocketbench-pull-") as scratch:
                local_json = confined(Path(scratch), "result.json")
                self.transport.pull(f"{run_dir}/result.json", local_json)
                json_text = local_json.read_text(errors="replace")
        report = report_from_exit(json_text, rc, stderr, BACKEND)
        if report.ok and job.outputs is not None:
            self._pull_whole(f"{run_dir}/outputs.pbtf", job.outputs)
        if report.ok and job.etdump is not None:
            self._pull_whole(f"{run_dir}/{TRACE_NAME}", job.etdump)
        reason = (
            None if report.ok else explain_launch_failure(rc, stderr) or explain_launch_failure(rc, report.error or "")
        )
        if reason:
            report = replace(report, error=reason)
            report.raw.update(launch_failed=True, exit_status=rc)  # the device may repair and retry
        elif not report.ok and rc != 0 and stderr.strip() and report.error and stderr.strip() not in report.error:
            report = replace(report, error=f"{report.error} | stderr: {stderr.strip().splitlines()[-1]}")
        report.raw["device_columns"] = {
            "cpu_mask": placement.mask or None,
            "pinned_cores": len(placement.cpus),
            "cores": placement.names or None,
            "core_clusters": placement.clusters or None,
            "threads_requested": job.threads,
        }
        return report
