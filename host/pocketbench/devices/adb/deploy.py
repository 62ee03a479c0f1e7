"""Files on the phone: content-addressed under /data/local/tmp/pocketbench/<sha256>/.

Only hex digests and fixed names ever reach a device path, so a model called `x; rm -rf /`
or `../../etc` never becomes part of a command or a path. A push goes to a temporary name,
its hash is checked on the phone, then it is renamed: a truncated push is never reused.
"""

from __future__ import annotations

import hashlib
import os
import platform
import shlex
from pathlib import Path

from pocketbench.devices import native_runner
from pocketbench.devices.adb.transport import Transport
from pocketbench.errors import DeviceError, PocketbenchError
from pocketbench.names import inside, safe_name

WORK_ROOT = "/data/local/tmp/pocketbench"
RUNS_DIR = f"{WORK_ROOT}/runs"
RUNNER_NAME = "pocket_runner"
DEVICE_RUNNER_ENV = "POCKETBENCH_DEVICE_RUNNER"  # a runner to push instead of the built one


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def confined(folder: Path, name: str) -> Path:
    """`folder/name` for a pulled file, refusing anything that would land outside `folder`."""
    return inside(folder, name, "file name on the phone").resolve()


_HOST_ABI = {"x86_64": "x86_64", "aarch64": "arm64-v8a", "arm64": "arm64-v8a"}.get(platform.machine())
_BUILD = native_runner.host_build_path().parent.parent  # device_runner/build


def runner_for_abi(abi: str) -> Path:
    """The pocket_runner build that runs on a phone with `abi`; a missing one names its recipe."""
    override = os.environ.get(DEVICE_RUNNER_ENV)
    if override:
        if not Path(override).is_file():
            raise PocketbenchError(f"{DEVICE_RUNNER_ENV}={override} is not a file: fix or unset it")
        return Path(override)
    candidates: list[Path] = []
    if abi == "arm64-v8a":
        candidates.append(_BUILD / "android" / RUNNER_NAME)  # static, bionic: what a phone runs
    if abi == _HOST_ABI:
        candidates.append(native_runner.host_build_path())  # the emulated phone runs host binaries
    for path in candidates:
        if path.is_file():
            return path
    recipes = {
        "x86_64": "`just build-runner` (x86_64 Android builds are not supported by the recipes)",
        "arm64-v8a": "`just runner-android NDK=<ndk> EXECUTORCH_SRC=<executorch checkout>`"
        " (`just build-runner-arm64` builds a glibc runner for arm64 Linux boards, not for Android)",
    }
    how = recipes.get(abi, f"no recipe builds the runner for ABI {abi!r}")
    raise PocketbenchError(f"no pocket_runner for the phone's ABI {abi}: build it with {how}")


def q(text: str) -> str:
    return shlex.quote(text)


class Deployer:
    """Puts files on one phone once per session; `known` remembers what was verified there."""

    def __init__(self, transport: Transport, serial: str):
        self.transport = transport
        self.serial = serial
        self.known: dict[str, str] = {}  # sha256 → verified remote path

    def ensure(self, local: Path, name: str, executable: bool = False, sha: str | None = None) -> str:
        """Remote path of `local` under WORK_ROOT/<sha256>/<name>, pushed only when missing or wrong."""
        sha = sha or sha256_file(local)
        if sha in self.known:
            return self.known[sha]
        folder = f"{WORK_ROOT}/{sha}"
        remote = f"{folder}/{safe_name(name)}"
        if self._remote_sha(remote) != sha:
            self._push_verified(local, folder, remote, sha, executable)
        self.known[sha] = remote
        return remote

    def _remote_sha(self, remote: str) -> str | None:
        result = self.transport.shell(f"sha256sum {q(remote)} 2>/dev/null", timeout_s=60)
        words = result.output.split()
        return words[0] if result.ok and words else None

    def _push_verified(self, local: Path, folder: str, remote: str, sha: str, executable: bool) -> None:
        tmp = f"{folder}/.{os.getpid()}.{os.urandom(4).hex()}.tmp"
        setup = self.transport.shell(f"mkdir -p {q(folder)} && rm -f {q(remote)}", timeout_s=30)
        if not setup.ok:
            raise DeviceError(
                f"phone {self.serial}: cannot create {folder}: {setup.output.strip()}", serial=self.serial
            )
        try:
            self.transport.push(local, tmp)
        except DeviceError as exc:
            if "No space left" in str(exc):
                raise DeviceError(
                    f"phone {self.serial} is out of space pushing {local.name} ({local.stat().st_size} bytes) to"
                    f" {WORK_ROOT}: free space on the phone (old runs: `adb shell rm -rf {WORK_ROOT}`)",
                    serial=self.serial,
                ) from exc
            raise
        got = self._remote_sha(tmp)
        if got != sha:
            self.transport.shell(f"rm -f {q(tmp)}", timeout_s=30)
            raise DeviceError(
                f"phone {self.serial}: {local.name} arrived corrupt (sha256 {got} != {sha}); retry the run",
                serial=self.serial,
            )
        mode = "755" if executable else "644"
        done = self.transport.shell(f"chmod {mode} {q(tmp)} && mv -f {q(tmp)} {q(remote)}", timeout_s=30)
        if not done.ok:
            raise DeviceError(f"phone {self.serial}: cannot place {remote}: {done.output.strip()}", serial=self.serial)

    def sweep_stale(self) -> None:
        """Remove what killed runs left: run folders (their runners killed first) and temp pushes.

        Safe because the device lease guarantees no other pocketbench is using this phone."""
        script = (
            f'for d in {q(RUNS_DIR)}/*/; do [ -d "$d" ] || continue;'
            # pids are only meaningful in the boot that wrote them
            ' if [ "$(cat "$d"boot_id 2>/dev/null)" = "$(cat /proc/sys/kernel/random/boot_id)" ]; then'
            ' for f in "$d"wrapper.pid "$d"runner.pid; do [ -f "$f" ] && kill -9 "$(cat "$f")" 2>/dev/null; done; fi;'
            ' rm -rf "$d"; done;'
            f" rm -f {q(WORK_ROOT)}/*/.*.tmp; true"
        )
        self.transport.shell(script, timeout_s=60)
