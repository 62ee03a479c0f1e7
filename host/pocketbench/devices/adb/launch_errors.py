"""Why a runner could not start on a phone, from its exit status and stderr, with the fix.

A pure function over captured text: the failed row of a bench and `pocketbench devices --check`
both use it, so a user reads the same reason in both places.
"""

from __future__ import annotations

import re

REBUILD = "rebuild it with `just build-runner-android`"
SIGSYS_EXIT = 128 + 31  # a shell's exit status for a death by SIGSYS
RSEQ_HEDGE = "GLIBC_TUNABLES=glibc.pthread.rseq=0"
_LOADER = re.compile(r"error while loading shared libraries: (\S+?): (.+)$", re.MULTILINE)
_NOT_FOUND = re.compile(r"(\S+): (?:No such file or directory|not found|inaccessible or not found)")


def explain_launch_failure(exit_code: int, stderr: str) -> str | None:
    """One line naming what kept the runner from starting and how to fix it; None when the runner
    itself ran (its own JSON/one-line error then says what went wrong). A damaged or missing file
    on the phone is repaired by the device before this line is ever shown (adb/device.py), so the
    advice here is for what a re-push cannot fix."""
    text = stderr.strip()
    loader = _LOADER.search(text)
    if loader:
        name, what = loader.group(1).rsplit("/", 1)[-1], loader.group(2).strip()
        if what.startswith("cannot open shared object file"):
            return f"loader exited {exit_code}: missing {name} (the runner bundle lacks it: {REBUILD})"
        return f"loader exited {exit_code}: {name} is damaged ({what}): {REBUILD}"
    if exit_code in (126, 127) and "Exec format error" in text:
        return (
            f"the phone cannot execute the runner (exit {exit_code}, Exec format error): it is built for"
            " another CPU; check the phone's ABI in `pocketbench devices`"
        )
    if exit_code == 126:
        return (
            f"exec denied in /data/local/tmp (exit {exit_code}: {_last_line(text)}): SELinux or a noexec mount"
            " stops the shell user from running programs there; check `adb shell getenforce` and"
            " `adb shell mount | grep /data`, or use the NDK static build (`just runner-android`)"
        )
    if exit_code == 127:
        found = _NOT_FOUND.search(text)
        if found:
            name = found.group(1).rstrip(":").rsplit("/", 1)[-1]
            return f"the runner could not start (exit 127): {name} is not on the phone ({REBUILD})"
        return f"the runner could not start (exit 127): {_last_line(text)}"
    if exit_code == 128 + 4:
        return (
            "the runner died of an illegal instruction (SIGILL): it uses a CPU feature this phone lacks;"
            " report the phone's CPU (`adb shell cat /proc/cpuinfo`)"
        )
    if exit_code == SIGSYS_EXIT:
        return seccomp_failure(None)
    if "XnnpackBackend is not available" in text:
        return (
            "XNNPACK could not start: it reads /proc/cpuinfo and /sys/devices/system/cpu to detect the CPU,"
            " and cannot read them on this phone"
        )
    return None


def seccomp_failure(syscall: str | None) -> str:
    """A runner killed by SIGSYS: a seccomp filter (Android's app filter kills syscalls outside its
    allowlist instead of failing them) rejected `syscall` (None: not known)."""
    if syscall == "rseq":
        return (
            "killed by seccomp: syscall rseq (SIGSYS): glibc registers rseq for every thread and the phone's"
            f" filter kills the call; the bundle's launcher must set {RSEQ_HEDGE}: {REBUILD}"
        )
    named = f"syscall {syscall}" if syscall else "a syscall outside the phone's allowlist (not rseq)"
    return (
        f"killed by seccomp: {named} (SIGSYS): the phone runs adb shell commands under a seccomp filter"
        " this runner does not fit; report the phone's model and Android version (`pocketbench devices`)"
    )


_PUSHED_FOLDER = re.compile(r"/data/local/tmp/pocketbench/[0-9a-f]{64}/")


def _last_line(text: str) -> str:
    """The last line of stderr, with the phone's long content-addressed folder names shortened."""
    lines = [line for line in text.splitlines() if line.strip()]
    return _PUSHED_FOLDER.sub(".../", lines[-1].strip()) if lines else "no output"
