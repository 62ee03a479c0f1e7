"""Why a runner could not start on a phone, from its exit status and stderr, with the fix.

A pure function over captured text: the failed row of a bench and `pocketbench devices --check`
both use it, so a user reads the same reason in both places.
"""

from __future__ import annotations

import re

REBUILD = "rebuild it with `just build-runner-android`"
_MISSING_LIB = re.compile(r"error while loading shared libraries: ([^:\s]+): cannot open shared object")
_NOT_FOUND = re.compile(r"(\S+): (?:No such file or directory|not found|inaccessible or not found)")


def explain_launch_failure(exit_code: int, stderr: str) -> str | None:
    """One line naming what kept the runner from starting and how to fix it; None when the runner
    itself ran (its own JSON/one-line error then says what went wrong)."""
    text = stderr.strip()
    missing = _MISSING_LIB.search(text)
    if missing:
        return f"loader exited {exit_code}: missing {missing.group(1)} (the runner bundle lacks it: {REBUILD})"
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
        what = found.group(1) if found else _last_line(text)
        return f"loader exited 127: {what} not found on the phone (a file of the runner is missing: {REBUILD})"
    if exit_code == 128 + 4:
        return (
            "the runner died of an illegal instruction (SIGILL): it uses a CPU feature this phone lacks;"
            " report the phone's CPU (`adb shell cat /proc/cpuinfo`)"
        )
    if "XnnpackBackend is not available" in text:
        return (
            "XNNPACK could not start: it reads /proc/cpuinfo and /sys/devices/system/cpu to detect the CPU,"
            " and cannot read them on this phone"
        )
    return None


_PUSHED_FOLDER = re.compile(r"/data/local/tmp/pocketbench/[0-9a-f]{64}/")


def _last_line(text: str) -> str:
    """The last line of stderr, with the phone's long content-addressed folder names shortened."""
    lines = [line for line in text.splitlines() if line.strip()]
    return _PUSHED_FOLDER.sub(".../", lines[-1].strip()) if lines else "no output"
