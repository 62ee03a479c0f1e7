"""Files on the phone: content-addressed under /data/local/tmp/pocketbench/<sha256>/.

Only hex digests and fixed names ever reach a device path, so a model called `x; rm -rf /`
or `../../etc` never becomes part of a command or a path. A push goes to a temporary name,
its hash is checked on the phone, then it is renamed: a truncated push is never reused.
"""

from __future__ import annotations

import os
import shlex
import time
from dataclasses import dataclass
from pathlib import Path

from pocketbench.devices.adb.runner_choice import RUNNER_NAME, RunnerChoice
from pocketbench.devices.adb.transport import Transport
from pocketbench.devices.bundle.manifest import MANIFEST, Bundle, read_bundle, sha256_file, verify
from pocketbench.errors import DeviceError, PocketbenchError
from pocketbench.names import inside, safe_name

WORK_ROOT = "/data/local/tmp/pocketbench"
RUNS_DIR = f"{WORK_ROOT}/runs"


def confined(folder: Path, name: str) -> Path:
    """`folder/name` for a pulled file, refusing anything that would land outside `folder`."""
    return inside(folder, name, "file name on the phone").resolve()


def q(text: str) -> str:
    return shlex.quote(text)


@dataclass(frozen=True)
class RunnerOnPhone:
    """A runner placed on the phone: the argv that starts it, and what placing it cost."""

    command: tuple[str, ...]  # e.g. ("sh", ".../launch.sh") for a bundle, (".../pocket_runner",)
    description: str  # which runner, for the run's device columns
    pushed_bytes: int  # 0 when everything was already there
    seconds: float  # checking and pushing
    checked: bool  # False when this session had already verified it (nothing was asked of the phone)


class Deployer:
    """Puts files on one phone once per session; `known` remembers what was verified there."""

    def __init__(self, transport: Transport, serial: str):
        self.transport = transport
        self.serial = serial
        self.known: dict[str, str] = {}  # sha256 → verified remote path
        self.pushed_bytes = 0  # everything pushed by this deployer
        # What was found damaged on the phone and pushed again, in order ("re-pushed X (...)").
        self.repairs: list[str] = []

    def ensure_runner(self, choice: RunnerChoice) -> RunnerOnPhone:
        """Put `choice` on the phone (a single file, or a bundle as one content-addressed folder)."""
        start, before, known = time.monotonic(), self.pushed_bytes, len(self.known)
        if choice.is_bundle:
            bundle = read_bundle(choice.path)
            folder = self.ensure_bundle(bundle)
            command: tuple[str, ...] = ("sh", f"{folder}/{bundle.launcher}")
            what = f"bundle {bundle.abi} {bundle.bundle_id[:12]}"
        else:
            command = (self.ensure(choice.path, RUNNER_NAME, executable=True),)
            what = f"{choice.kind} {sha256_file(choice.path)[:12]}"
        checked = len(self.known) != known
        return RunnerOnPhone(command, what, self.pushed_bytes - before, time.monotonic() - start, checked)

    def ensure_bundle(self, bundle: Bundle) -> str:
        """The phone folder WORK_ROOT/<manifest sha256>/ holding every file of `bundle`, checked
        against the manifest; only missing or wrong files are pushed (each verified, then renamed)."""
        if bundle.bundle_id in self.known:
            return self.known[bundle.bundle_id]
        problems = verify(bundle)
        if problems:
            raise PocketbenchError(
                f"runner bundle {bundle.folder} is damaged: {'; '.join(problems)}: rebuild it with"
                " `just build-runner-android`"
            )
        folder = f"{WORK_ROOT}/{bundle.bundle_id}"
        wanted = {f.name: (f.sha256, f.executable) for f in bundle.files}
        names = " ".join(q(safe_name(n)) for n in sorted([*wanted, MANIFEST]))
        listing = self.transport.shell(f"cd {q(folder)} 2>/dev/null && sha256sum {names} 2>/dev/null; true", 120)
        have = {}
        for line in listing.output.splitlines():
            words = line.split()
            if len(words) == 2:
                have[words[1]] = words[0]
        # The manifest goes last: a folder holding it was once complete, so anything wrong in it
        # since is damage on the phone (a first push, or one a dropped link cut short, is not).
        complete = have.get(MANIFEST) == bundle.bundle_id
        for name, (sha, executable) in [*sorted(wanted.items()), (MANIFEST, (bundle.bundle_id, False))]:
            if have.get(name) != sha:
                self._push_verified(bundle.folder / name, folder, f"{folder}/{name}", sha, executable)
                if complete:
                    self._repaired(name, name in have)
        self.known[bundle.bundle_id] = folder
        return folder

    def recheck_bundle(self, bundle: Bundle) -> list[str]:
        """Hash the bundle's folder on the phone again and push what is damaged or missing (after
        the runner could not start): the repairs made, empty when the phone's copy is whole."""
        before = len(self.repairs)
        self.known.pop(bundle.bundle_id, None)
        self.ensure_bundle(bundle)
        return self.repairs[before:]

    def _repaired(self, name: str, present: bool) -> None:
        self.repairs.append(f"re-pushed {name} (the phone's copy was {'damaged' if present else 'missing'})")

    def ensure(self, local: Path, name: str, executable: bool = False, sha: str | None = None) -> str:
        """Remote path of `local` under WORK_ROOT/<sha256>/<name>, pushed only when missing or wrong."""
        sha = sha or sha256_file(local)
        if sha in self.known:
            return self.known[sha]
        folder = f"{WORK_ROOT}/{sha}"
        remote = f"{folder}/{safe_name(name)}"
        found = self._remote_sha(remote)
        if found != sha:
            self._push_verified(local, folder, remote, sha, executable)
            if found is not None:  # something else under this content's name: damaged there
                self._repaired(name, True)
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
        self.pushed_bytes += local.stat().st_size
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
