"""The runner bundles `just build-runner-android` makes: complete, self-contained, honest manifests.

The arm64 bundle runs under qemu-aarch64 with an empty root (`-L` pointing nowhere), so a library
it does not carry cannot be found; the x86_64 bundle's loader is asked which files it loaded.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from pocketbench.devices.adb.launch_errors import explain_launch_failure
from pocketbench.devices.adb.runner_choice import RunnerChoice, build_blocker
from pocketbench.devices.adb.runner_plan import device_specs
from pocketbench.devices.bundle.elf import parse_elf
from pocketbench.devices.bundle.manifest import MANIFEST, read_bundle, verify
from pocketbench.errors import PocketbenchError
from pocketbench.runner import tensorfile

from tests import runner_support as support

pytestmark = pytest.mark.slow  # builds both bundles (a cross build included) once per session

LOADERS = {"x86_64": "ld-linux-x86-64.so.2", "arm64-v8a": "ld-linux-aarch64.so.1"}
MACHINES = {"x86_64": "x86_64", "arm64-v8a": "aarch64"}


@pytest.fixture(scope="module")
def ptes(tmp_path_factory: pytest.TempPathFactory):
    return support.tiny_ptes(tmp_path_factory.getbasetemp() / "runner-ptes")


@pytest.mark.parametrize("abi", ["x86_64", "arm64-v8a"])
def test_manifest_matches_the_files_and_names_what_it_ships(abi: str) -> None:
    bundle = read_bundle(support.android_bundle(abi))
    assert bundle.abi == abi
    assert verify(bundle) == []
    on_disk = sorted(p.name for p in bundle.folder.iterdir() if p.name != MANIFEST)
    assert on_disk == sorted(f.name for f in bundle.files)  # nothing unlisted, nothing missing
    assert bundle.total_bytes == sum(p.stat().st_size for p in bundle.folder.iterdir())
    assert bundle.versions["executorch"] == "1.5.1"
    assert re.match(r"2\.\d+ \(", bundle.versions["glibc"]), bundle.versions
    assert re.match(r"\d+\.\d+", bundle.versions["gcc"]), bundle.versions
    names = {f.name for f in bundle.files}
    assert {"pocket_runner", LOADERS[abi], "libc.so.6", "libstdc++.so.6", "launch.sh"} <= names
    assert "libexecutorch_backend_openvino.so" not in names  # only what the runner loads
    glibc = (bundle.folder / "LICENSE.glibc").read_text()
    gcc = (bundle.folder / "LICENSE.gcc-runtime").read_text()
    assert "GNU Lesser General Public License" in glibc or "LGPL" in glibc
    assert "GCC RUNTIME LIBRARY EXCEPTION" in gcc.upper()
    assert (
        "BSD" in (bundle.folder / "LICENSE.executorch").read_text()
        or "Redistribution" in (bundle.folder / "LICENSE.executorch").read_text()
    )


@pytest.mark.parametrize("abi", ["x86_64", "arm64-v8a"])
def test_every_library_any_file_needs_is_in_the_bundle(abi: str) -> None:
    folder = support.android_bundle(abi)
    elves = {p.name: parse_elf(p.read_bytes(), p.name) for p in folder.iterdir() if p.read_bytes()[:4] == b"\x7fELF"}
    assert all(e.machine == MACHINES[abi] for e in elves.values())
    needed = {lib for e in elves.values() for lib in e.needed}
    assert needed <= set(elves), f"needed but not shipped: {needed - set(elves)}"
    assert Path(elves["pocket_runner"].interpreter or "").name == LOADERS[abi]
    # No file searches the build machine's folders (or ../lib beside the bundle) on a phone.
    assert {p for e in elves.values() for p in e.runpath} <= {"$ORIGIN"}


def test_the_same_build_gets_the_same_bundle_id() -> None:
    folder = support.android_bundle("x86_64")
    before, inode = read_bundle(folder).bundle_id, folder.stat().st_ino
    proc = support.just("build-runner-android-x86_64")
    assert proc.returncode == 0, proc.stderr
    assert read_bundle(folder).bundle_id == before  # no timestamps: nothing is pushed again for a rebuild
    assert folder.stat().st_ino == inode  # the same bundle stays in place: a push reading it is undisturbed


def test_x86_64_launcher_loads_only_the_bundle_and_ignores_the_callers_ld_settings(ptes, tmp_path: Path) -> None:
    folder = support.android_bundle("x86_64")
    inputs = support.write_inputs(tmp_path / "in.pbtf", support.input_sets(2, seed=3))
    # The phone's settings arrive once the shell runs (a glibc `sh` here would apply them to itself).
    phone_env = "export LD_PRELOAD=/nonexistent/libbionic_shim.so LD_LIBRARY_PATH=/usr/lib LD_DEBUG=libs"
    args = ["--model", str(ptes["int8"].path), "--inputs", str(inputs), "--iterations", "1",
            "--outputs", str(tmp_path / "out.pbtf"), "--json", str(tmp_path / "r.json")]  # fmt: skip
    proc = subprocess.run(["sh", "-c", f"{phone_env}; . ./launch.sh", "sh", *args], cwd=folder,
                          capture_output=True, text=True, timeout=120, check=False)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "LD_PRELOAD" not in proc.stderr and "cannot be preloaded" not in proc.stderr
    assert "calling init" not in proc.stderr  # LD_DEBUG is cleared with every other LD_* variable
    # What the launcher execs, asked to list what it loads: the bundle's files only.
    loader = [str(folder / "ld-linux-x86-64.so.2"), "--inhibit-cache", "--library-path", str(folder), "--list"]
    listed = subprocess.run([*loader, str(folder / "pocket_runner")], capture_output=True, text=True, check=True)
    loaded = re.findall(r"=> (\S+) \(", listed.stdout)
    assert loaded, listed.stdout
    outside = [p for p in loaded if Path(p).resolve().parent != folder.resolve()]
    assert outside == [], f"loaded from outside the bundle: {outside}"
    host = support.run_runner(support.host_runner(), *args[:6], "--outputs", tmp_path / "host.pbtf",
                              json_path=tmp_path / "h.json")  # fmt: skip
    assert host.returncode == 0
    assert (tmp_path / "out.pbtf").read_bytes() == (tmp_path / "host.pbtf").read_bytes()


@pytest.mark.parametrize("variant", ["fp32", "int8"])
def test_arm64_bundle_runs_under_qemu_with_no_system_library_anywhere(ptes, variant: str, tmp_path: Path) -> None:
    folder = support.android_bundle("arm64-v8a")
    empty = tmp_path / "empty-root"
    empty.mkdir()
    inputs = support.write_inputs(tmp_path / "in.pbtf", support.input_sets(2, seed=4))
    common = ["--model", str(ptes[variant].path), "--inputs", str(inputs), "--warmup", "0", "--iterations", "1"]
    # Exactly what launch.sh execs, under qemu (no binfmt_misc here): the loader, the bundle only.
    launcher = (folder / "launch.sh").read_text()
    assert '--inhibit-cache --library-path "$here"' in launcher and "LD_*) unset" in launcher
    assert "GLIBC_TUNABLES=glibc.pthread.rseq=0" in launcher
    argv = ["qemu-aarch64", "-cpu", "max,sme=off", "-L", str(empty), str(folder / LOADERS["arm64-v8a"]),
            "--inhibit-cache", "--library-path", str(folder), str(folder / "pocket_runner"), *common,
            "--outputs", str(tmp_path / "arm.pbtf"), "--json", str(tmp_path / "arm.json")]  # fmt: skip
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    host = support.run_runner(support.host_runner(), *common, "--outputs", tmp_path / "host.pbtf",
                              json_path=tmp_path / "host.json")  # fmt: skip
    assert host.returncode == 0
    got, want = tensorfile.read(tmp_path / "arm.pbtf"), tensorfile.read(tmp_path / "host.pbtf")
    if variant == "int8":
        assert [[t.tobytes() for t in s] for s in got] == [[t.tobytes() for t in s] for s in want]
    else:
        for g, w in zip(got, want, strict=True):
            scale = float(abs(w[0]).max())
            assert float(abs(g[0] - w[0]).max()) <= 1e-5 * scale


def test_arm64_bundle_without_one_library_names_it(tmp_path: Path) -> None:
    broken = tmp_path / "bundle"
    shutil.copytree(support.android_bundle("arm64-v8a"), broken)
    (broken / "libexecutorch_kernels_quantized.so").unlink()
    empty = tmp_path / "empty-root"
    empty.mkdir()
    argv = ["qemu-aarch64", "-cpu", "max,sme=off", "-L", str(empty), str(broken / LOADERS["arm64-v8a"]),
            "--inhibit-cache", "--library-path", str(broken), str(broken / "pocket_runner"), "--help"]  # fmt: skip
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 127
    reason = explain_launch_failure(proc.returncode, proc.stderr)
    assert reason is not None and "missing libexecutorch_kernels_quantized.so" in reason
    assert "libexecutorch_kernels_quantized.so is missing" in verify(read_bundle(broken))


# -- pure parts, on captured text -------------------------------------------------------------


def test_launch_failures_are_explained_with_their_fix() -> None:
    missing = (
        "/data/local/tmp/pocketbench/ab/pocket_runner: error while loading shared libraries: libm.so.6:"
        " cannot open shared object file: No such file or directory"
    )
    assert "loader exited 127: missing libm.so.6" in (explain_launch_failure(127, missing) or "")
    denied = "launch.sh: 8: exec: /data/local/tmp/pocketbench/ab/ld-linux-aarch64.so.1: Permission denied"
    assert "exec denied in /data/local/tmp" in (explain_launch_failure(126, denied) or "")
    wrong = "launch.sh[8]: /data/local/tmp/x/ld-linux-aarch64.so.1: Exec format error"
    assert "another CPU" in (explain_launch_failure(126, wrong) or "")
    assert "SIGILL" in (explain_launch_failure(132, "") or "")
    # A library damaged on the phone is named once, never as "… invalid ELF header not found".
    damaged = (
        "./pocket_runner: error while loading shared libraries: ./libexecutorch_kernels_quantized.so:"
        " invalid ELF header"
    )
    assert explain_launch_failure(127, damaged) == (
        "loader exited 127: libexecutorch_kernels_quantized.so is damaged (invalid ELF header):"
        " rebuild it with `just build-runner-android`"
    )
    gone = "launch.sh: 8: exec: /data/local/tmp/pocketbench/ab/ld-linux-x86-64.so.2: not found"
    assert "ld-linux-x86-64.so.2 is not on the phone" in (explain_launch_failure(127, gone) or "")
    assert (explain_launch_failure(159, "") or "").startswith("killed by seccomp: a syscall outside the phone's")
    # The runner's own failures (bad model, unwritable output) keep their own message.
    assert explain_launch_failure(3, "pocket_runner: cannot load model.pte: Permission denied") is None
    assert explain_launch_failure(2, "pocket_runner: --outputs: Permission denied") is None


def test_damaged_elf_files_are_one_clear_line() -> None:
    with pytest.raises(PocketbenchError, match="not an ELF file"):
        parse_elf(b"#!/bin/sh\n", "launch.sh")
    with pytest.raises(PocketbenchError, match="damaged ELF file"):
        parse_elf(b"\x7fELF\x02\x01\x01" + b"\0" * 40 + b"\xff" * 20, "cut.so")


def test_device_specs_come_from_the_bench_command_line() -> None:
    assert device_specs(["-m", "digits_cnn"]) == ["auto"]
    assert device_specs(["-d", "tcp:1.2.3.4:5", "--device=adb:X", "-dlocal"]) == ["tcp:1.2.3.4:5", "adb:X", "local"]


def test_a_host_without_the_cross_compiler_gets_one_line_saying_what_to_install(monkeypatch, tmp_path) -> None:
    tools = tmp_path / "bin"
    tools.mkdir()
    monkeypatch.setenv("PATH", str(tools))  # nothing on PATH: no compiler at all
    choice = RunnerChoice("arm64-v8a", "bundle", tmp_path / "android-arm64")
    assert "apt-get install g++" in (build_blocker(choice) or "")
    (tools / "g++").symlink_to(shutil.which("g++", path="/usr/bin:/bin") or "/bin/true")
    blocker = build_blocker(choice) or ""  # a native compiler, but not the arm64 cross compiler
    assert "apt-get install g++-aarch64-linux-gnu" in blocker and "\n" not in blocker
