"""Which pocket_runner a phone gets, whether it is built, and how to build it.

For an arm64-v8a or x86_64 phone, in order: $POCKETBENCH_DEVICE_RUNNER (a runner file or a bundle
folder), else the NDK's static build (arm64-v8a only, `just runner-android`), else the glibc bundle
(`just build-runner-android`). `pocketbench devices`, the deployer and `just bench` all ask here.
"""

from __future__ import annotations

import os
import platform
import shutil
from dataclasses import dataclass
from pathlib import Path

from pocketbench.devices.bundle.manifest import ABI_DIRS, MANIFEST
from pocketbench.errors import PocketbenchError
from pocketbench.paths import runner_build_dir

DEVICE_RUNNER_ENV = "POCKETBENCH_DEVICE_RUNNER"  # a runner file or bundle folder to push instead
RUNNER_NAME = "pocket_runner"
BUILD = runner_build_dir()  # device_runner/build of the checkout
NDK_STATIC = BUILD / "android" / RUNNER_NAME
BUNDLE_RECIPES = {"arm64-v8a": "build-runner-android-arm64", "x86_64": "build-runner-android-x86_64"}


@dataclass(frozen=True)
class RunnerChoice:
    """The runner for one ABI: `kind` is override | ndk-static | bundle; `path` a file or a folder."""

    abi: str
    kind: str
    path: Path

    @property
    def is_bundle(self) -> bool:
        return (self.path / MANIFEST).is_file() if self.kind == "override" else self.kind == "bundle"

    @property
    def built(self) -> bool:
        return (self.path / MANIFEST).is_file() if self.is_bundle else self.path.is_file()

    @property
    def recipe(self) -> str | None:
        """The `just` recipe that builds it (None for a runner the user supplied)."""
        return BUNDLE_RECIPES[self.abi] if self.kind == "bundle" else None

    def describe(self) -> str:
        """Short, for the devices table: `bundle android-arm64`, `NDK static build`, the override."""
        if self.kind == "override":
            return f"{DEVICE_RUNNER_ENV}={self.path}"
        if self.kind == "ndk-static":
            return "NDK static build"
        return (
            f"bundle {self.path.name}" if self.built else f"bundle {self.path.name}: not built (`just {self.recipe}`)"
        )


def choose_runner(abi: str) -> RunnerChoice:
    """The runner a phone with `abi` gets (maybe not built yet); an unsupported ABI is an error."""
    override = os.environ.get(DEVICE_RUNNER_ENV)
    if override:
        path = Path(override)
        if not (path.is_file() or (path / MANIFEST).is_file()):
            raise PocketbenchError(
                f"{DEVICE_RUNNER_ENV}={override} is neither a runner file nor a bundle folder: fix or unset it"
            )
        return RunnerChoice(abi, "override", path)
    if abi not in ABI_DIRS:
        raise PocketbenchError(
            f"no pocket_runner for the phone's ABI {abi!r}: pocketbench builds runners for"
            f" {' and '.join(ABI_DIRS)}; build one yourself and set {DEVICE_RUNNER_ENV}"
        )
    if abi == "arm64-v8a" and NDK_STATIC.is_file():
        return RunnerChoice(abi, "ndk-static", NDK_STATIC)
    return RunnerChoice(abi, "bundle", BUILD / ABI_DIRS[abi])


def built_runner(abi: str) -> RunnerChoice:
    """`choose_runner`, but a runner that is not built is an error naming its recipe."""
    choice = choose_runner(abi)
    if not choice.built:
        blocker = build_blocker(choice)
        how = blocker or f"build it with `just {choice.recipe}`"
        raise PocketbenchError(f"no pocket_runner for the phone's ABI {abi}: {how}")
    return choice


def build_blocker(choice: RunnerChoice) -> str | None:
    """One line saying what to install when this computer cannot build `choice`, else None."""
    if choice.kind != "bundle":
        return None
    if shutil.which("c++") is None and shutil.which("g++") is None:
        return "building the runner needs a C++ compiler: `sudo apt-get install g++` (or `just system-deps`)"
    if choice.abi == "arm64-v8a" and shutil.which("aarch64-linux-gnu-g++") is None:
        return (
            "building the arm64-v8a runner needs Debian's cross compiler: `sudo apt-get install"
            f" g++-aarch64-linux-gnu` (or `just system-deps`), or set {DEVICE_RUNNER_ENV} to a runner"
        )
    if choice.abi == "x86_64" and platform.machine() != "x86_64":
        return (
            f"the x86_64 runner is built from this computer's own build, and this is {platform.machine()}:"
            f" build it on an x86_64 Linux computer, or set {DEVICE_RUNNER_ENV} to a runner"
        )
    if shutil.which("dpkg-query") is None:
        return (
            "the runner bundle ships glibc and its licences from Debian packages: build it on Debian or"
            f" Ubuntu, or set {DEVICE_RUNNER_ENV} to a runner"
        )
    return None
