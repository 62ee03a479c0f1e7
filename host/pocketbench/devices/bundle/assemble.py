"""Assemble a runner bundle: the glibc-linked pocket_runner plus everything it loads, in one folder.

`just build-runner-android` calls this after building the runner. The folder holds the runner, the
ExecuTorch wheel's libraries it needs, glibc's loader and runtime (found by following DT_NEEDED,
so nothing it does not load is shipped), `launch.sh`, the licence texts of what it ships and
`manifest.json`. Run it as `python -m pocketbench.devices.bundle.assemble --help`.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from pocketbench.devices.bundle.elf import parse_elf, with_runpath
from pocketbench.devices.bundle.manifest import ABI_DIRS, LAUNCHER, MANIFEST, BundleFile, manifest_text
from pocketbench.errors import PocketbenchError

ABI_MACHINE = {"arm64-v8a": "aarch64", "x86_64": "x86_64"}
# Where Debian keeps each ABI's glibc runtime (the cross packages for arm64, the host's own for x86_64).
SYSTEM_LIB_DIRS = {
    "arm64-v8a": ("/usr/aarch64-linux-gnu/lib",),
    "x86_64": ("/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib64"),
}
INSTALL_HINT = {
    "arm64-v8a": "install g++-aarch64-linux-gnu (`just system-deps`)",
    "x86_64": "install g++ (`just system-deps`)",
}
EXECUTABLE = "pocket_runner"

LAUNCHER_TEXT = """\
# pocket_runner launcher (pocketbench bundle for {abi}). Run it as: sh {launcher} ARGS...
# The runner is linked against glibc; the phone's C library is bionic. Start it through the
# bundle's own glibc loader with the bundle as the only library path, and drop every LD_*
# variable of the phone (whatever its name), so that no library of the phone is ever loaded;
# with the shell's own builtins, so no program runs before they are gone.
set -f
for w in $(export -p); do case $w in LD_*) unset "${{w%%=*}}" ;; esac; done
set +f
# glibc registers rseq at every thread start. Android's app seccomp filter kills syscalls outside
# its allowlist with SIGSYS instead of failing them, so glibc's fallback would never run where a
# phone puts its shell under that filter; without rseq glibc only loses a scheduling hint.
GLIBC_TUNABLES=glibc.pthread.rseq=0
export GLIBC_TUNABLES
here=${{0%/*}}
[ "$here" = "$0" ] && here=.
exec "$here/{loader}" --inhibit-cache --library-path "$here" "$here/{runner}" "$@"
"""


def resolve_closure(runner: Path, search: list[Path]) -> dict[str, Path]:
    """Every library `runner` loads, transitively, by name → the file found in `search` (in order)."""
    found: dict[str, Path] = {}
    queue = [(runner.name, lib) for lib in parse_elf(runner.read_bytes(), str(runner)).needed]
    while queue:
        parent, name = queue.pop(0)
        if name in found:
            continue
        path = next((d / name for d in search if (d / name).is_file()), None)
        if path is None:
            dirs = ", ".join(str(d) for d in search)
            raise PocketbenchError(f"{parent} needs {name}, which is in none of: {dirs}")
        found[name] = path
        queue.extend((name, lib) for lib in parse_elf(path.read_bytes(), str(path)).needed)
    return found


def glibc_version(libc: Path) -> str:
    """'2.36 (Debian GLIBC 2.36-9+deb12u10)' from the banner glibc keeps in libc.so.6."""
    match = re.search(rb"GNU C Library \(([^)]*)\) [a-z ]*version (\d+(?:\.\d+)+)", libc.read_bytes())
    return f"{match.group(2).decode()} ({match.group(1).decode()})" if match else "unknown"


def compiler(binary: Path) -> str:
    """'12.2.0 (Debian 12.2.0-14)' from a binary's .comment section (the GCC that built it)."""
    for line in parse_elf(binary.read_bytes(), str(binary)).comment:
        match = re.match(r"GCC: \((.*)\) (\S+)", line)
        if match:
            return f"{match.group(2)} ({match.group(1)})"
    return "unknown"


def package_version(path: Path) -> str:
    """'libstdc++6-arm64-cross 12.2.0-14cross1': the Debian package that installed `path`."""
    owner = debian_package(path)
    version = _dpkg("-W", "-f=${Version}", owner) if owner else None
    return f"{owner} {version}" if owner and version else "unknown"


def dist_info_version(dist_info: Path) -> str:
    for line in (dist_info / "METADATA").read_text(errors="replace").splitlines():
        if line.startswith("Version:"):
            return line.split(":", 1)[1].strip()
    raise PocketbenchError(f"{dist_info}/METADATA has no Version line")


def _dpkg(*args: str) -> str | None:
    try:
        proc = subprocess.run(["dpkg-query", *args], capture_output=True, text=True, timeout=30, check=False)
    except FileNotFoundError:
        return None
    return proc.stdout.strip() if proc.returncode == 0 and proc.stdout.strip() else None


def debian_package(path: Path) -> str | None:
    """The Debian package that installed `path` (as found, or its real path), if dpkg knows it."""
    for candidate in (path, path.resolve()):
        out = _dpkg("-S", str(candidate))
        if out:
            return out.splitlines()[0].split(":")[0].strip()
    return None


def debian_copyright(path: Path) -> Path:
    """The copyright file of the Debian package that installed `path`; a clear error when unknown."""
    owner = debian_package(path)
    if owner is None:
        raise PocketbenchError(
            f"cannot tell which package installed {path}, so its licence cannot be shipped:"
            " build the bundle on Debian or Ubuntu with `just system-deps`"
        )
    copyright_file = Path("/usr/share/doc") / owner / "copyright"
    if not copyright_file.is_file():
        raise PocketbenchError(f"{copyright_file} is missing (package {owner}): reinstall {owner} with its docs")
    return copyright_file


def _licence_name(libraries: list[str], fallback: str) -> str:
    if any(n.startswith(("libc.so", "ld-linux")) for n in libraries):
        return "LICENSE.glibc"
    if any(n.startswith(("libstdc++", "libgcc_s")) for n in libraries):
        return "LICENSE.gcc-runtime"
    return f"LICENSE.{fallback}"


def licences(system: dict[str, Path], dist_info: Path) -> dict[str, tuple[Path, list[str]]]:
    """Licence file name in the bundle → (its source text, the shipped files it covers)."""
    texts = sorted((dist_info / "licenses").glob("*")) or sorted(dist_info.glob("LICENSE*"))
    if not texts:
        raise PocketbenchError(f"{dist_info} holds no licence file: use the executorch wheel's own dist-info")
    out: dict[str, tuple[Path, list[str]]] = {}
    for text in texts:
        suffix = "" if text.name == "LICENSE" else f"-{text.name}"
        out[f"LICENSE.executorch{suffix}"] = (text, ["libexecutorch*.so"])
    groups: dict[Path, list[str]] = {}
    for name, path in system.items():
        groups.setdefault(debian_copyright(path).resolve(), []).append(name)
    for source, names in groups.items():
        out[_licence_name(names, source.parent.name)] = (source, sorted(names))
    return out


def assemble(
    abi: str, runner: Path, executorch_lib: Path, dist_info: Path, out: Path, system_dirs: list[Path] | None = None
) -> Path:
    """Build the bundle for `abi` in `out` (replaced whole at the end; never left half-written)."""
    if abi not in ABI_MACHINE:
        raise PocketbenchError(f"no bundle for ABI {abi!r}: use one of {', '.join(ABI_MACHINE)}")
    if not runner.is_file():
        raise PocketbenchError(f"{runner} does not exist: build the runner first")
    info = parse_elf(runner.read_bytes(), str(runner))
    if info.machine != ABI_MACHINE[abi]:
        raise PocketbenchError(f"{runner} is built for {info.machine}, not {ABI_MACHINE[abi]} ({abi})")
    if not info.interpreter:
        raise PocketbenchError(f"{runner} has no program interpreter: it is static, push it alone instead")
    dirs = system_dirs or [Path(d) for d in SYSTEM_LIB_DIRS[abi]]
    libraries = resolve_closure(runner, [executorch_lib, *dirs])
    loader_name = Path(info.interpreter).name
    loader = next((d / loader_name for d in dirs if (d / loader_name).is_file()), None)
    if loader is None:
        raise PocketbenchError(
            f"glibc's loader {loader_name} is in none of {', '.join(map(str, dirs))}: {INSTALL_HINT[abi]}"
        )
    system = {n: p for n, p in libraries.items() if not p.is_relative_to(executorch_lib)}
    system[loader_name] = loader
    shipped = {**libraries, loader_name: loader, EXECUTABLE: runner}
    versions = {
        "executorch": dist_info_version(dist_info),
        "glibc": glibc_version(libraries["libc.so.6"]) if "libc.so.6" in libraries else "unknown",
        "libstdc++": package_version(libraries["libstdc++.so.6"]) if "libstdc++.so.6" in libraries else "none",
        "gcc": compiler(runner),  # the compiler that built the runner
    }
    covering = licences(system, dist_info)

    out.parent.mkdir(parents=True, exist_ok=True)
    staging = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    try:
        for name, path in shipped.items():  # real files (symlinks followed), searching only the bundle
            data = path.read_bytes()
            if parse_elf(data, str(path)).runpath:
                data = with_runpath(data, "$ORIGIN", str(path))
            (staging / name).write_bytes(data)
        for name, (source, _) in covering.items():
            shutil.copyfile(source, staging / name)
        launcher = LAUNCHER_TEXT.format(abi=abi, launcher=LAUNCHER, loader=loader_name, runner=EXECUTABLE)
        (staging / LAUNCHER).write_text(launcher)
        executable = {EXECUTABLE, loader_name}
        from pocketbench.devices.bundle.manifest import sha256_file

        files = []
        for path in sorted(staging.iterdir()):
            path.chmod(0o755 if path.name in executable else 0o644)
            files.append(BundleFile(path.name, sha256_file(path), path.stat().st_size, path.name in executable))
        covers = {name: names for name, (_, names) in covering.items()}
        manifest = manifest_text(abi, files, versions, covers)
        if _holds(out, manifest):
            return out  # the same bundle: left in place, so a rebuild never swaps it under a push
        (staging / MANIFEST).write_text(manifest)
        old = out.with_name(f".{out.name}.{os.getpid()}.old")
        if out.exists():
            out.rename(old)
        staging.rename(out)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return out


def _holds(out: Path, manifest: str) -> bool:
    """Whether `out` already is the bundle this manifest describes, every file intact."""
    from pocketbench.devices.bundle.manifest import read_bundle, verify

    try:
        return (out / MANIFEST).read_text() == manifest and not verify(read_bundle(out))
    except (OSError, PocketbenchError):
        return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pocketbench.devices.bundle.assemble", description=__doc__)
    parser.add_argument("--abi", required=True, choices=sorted(ABI_MACHINE))
    parser.add_argument("--runner", required=True, type=Path, help="the glibc-linked pocket_runner for that ABI")
    parser.add_argument("--executorch-lib", required=True, type=Path, help="the executorch wheel's lib/ folder")
    parser.add_argument("--dist-info", required=True, type=Path, help="the executorch wheel's .dist-info folder")
    parser.add_argument("--out", type=Path, help="the bundle folder [device_runner/build/android-<arch>]")
    args = parser.parse_args(argv)
    out = args.out or Path("device_runner/build") / ABI_DIRS[args.abi]
    try:
        folder = assemble(args.abi, args.runner, args.executorch_lib.resolve(), args.dist_info, out)
    except PocketbenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    from pocketbench.devices.bundle.manifest import read_bundle

    bundle = read_bundle(folder)
    size = f"{len(bundle.files) + 1} files, {bundle.total_bytes / 1e6:.1f} MB"
    print(f"built {folder}: {size}, bundle {bundle.bundle_id[:12]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
