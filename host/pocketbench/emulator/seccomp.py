"""The `android-app` seccomp persona: Android's app filter, as a glibc program meets it.

Android installs its app filter in zygote, so every app process carries it; it kills a syscall
outside its allowlist with SIGSYS instead of failing it, so glibc's fallbacks never run. Processes
`adb shell` starts are believed not to carry it, but a vendor or a later release may differ: this
persona lets the runner bundle and its diagnosis be tested against such a phone.

The filter is a real one (classic BPF through prctl). It traps, with SIGSYS, the syscalls glibc
2.36 makes that the app allowlist lacks, the ones glibc ports to Android turn off for that reason:
rseq (at every thread start; the bundle's launcher turns it off), statx, faccessat2, close_range
and epoll_pwait2. clone3 and set_robust_list, which the same ports list, are left out: glibc makes
them at every thread start with no way to turn them off, so a phone trapping them would run no
glibc program at all, which `pocketbench devices --check` then names as a SIGSYS death.

It is attached where an app's code would start: a program under /data run through a glibc loader
(`…/ld-linux-x86-64.so.2`, the runner bundle's way in), by a binfmt_misc rule private to the
phone's user namespace whose handler (`python -m pocketbench.emulator.seccomp FILE ARGS…`)
installs the filter and executes FILE. The phone's own tools (this computer's programs standing in
for toybox, which fits the filter) stay unfiltered. x86_64 persona only: under qemu-user the
filter would judge qemu's syscalls, not the program's.
"""

from __future__ import annotations

import ctypes
import os
import struct
import sys

ANDROID_APP = "android-app"
SECCOMP_PERSONAS = (ANDROID_APP,)
# x86_64 numbers (asm/unistd_64.h) of the syscalls the filter traps.
TRAPPED_X86_64 = {"rseq": 334, "statx": 332, "close_range": 436, "faccessat2": 439, "epoll_pwait2": 441}
AUDIT_ARCH_X86_64 = 0xC000003E
HANDLER = "/system/bin/seccomp-exec"  # in the phone; the binfmt_misc rule's interpreter
LOADER_EXTENSION = "2"  # ld-linux-x86-64.so.2: binfmt_misc matches a file name's extension

_LD_W_ABS, _JEQ_K, _RET_K = 0x20, 0x15, 0x06
_SECCOMP_RET_ALLOW, _SECCOMP_RET_TRAP = 0x7FFF0000, 0x00030000
_PR_SET_NO_NEW_PRIVS, _PR_SET_SECCOMP, _SECCOMP_MODE_FILTER = 38, 22, 2


def handler_script() -> str:
    """The binfmt_misc handler the phone runs: this module with this computer's Python."""
    return f'#!/bin/sh\nexec {sys.executable} -I -m pocketbench.emulator.seccomp "$@"\n'


def binfmt_rule() -> str:
    """Extension rule: every file named *.2 that is executed goes to the handler first."""
    return f":pocketbench-seccomp:E::{LOADER_EXTENSION}::{HANDLER}:"


def filter_program(trapped: dict[str, int]) -> list[tuple[int, int, int, int]]:
    """Classic BPF: another architecture is allowed through; a trapped number gets SIGSYS."""
    program = [(_LD_W_ABS, 0, 0, 4), (_JEQ_K, 1, 0, AUDIT_ARCH_X86_64), (_RET_K, 0, 0, _SECCOMP_RET_ALLOW)]
    program.append((_LD_W_ABS, 0, 0, 0))
    for number in sorted(trapped.values()):
        program += [(_JEQ_K, 0, 1, number), (_RET_K, 0, 0, _SECCOMP_RET_TRAP)]
    program.append((_RET_K, 0, 0, _SECCOMP_RET_ALLOW))
    return program


def install(trapped: dict[str, int]) -> None:
    """Put this process (and all it executes) under the filter; no privilege needed."""
    code = b"".join(struct.pack("<HBBI", *instruction) for instruction in filter_program(trapped))
    buffer = ctypes.create_string_buffer(code, len(code))
    prog = struct.pack("<HxxxxxxQ", len(code) // 8, ctypes.addressof(buffer))
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
    prog_buffer = ctypes.create_string_buffer(prog, len(prog))
    if (
        libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0
        or libc.prctl(_PR_SET_SECCOMP, _SECCOMP_MODE_FILTER, ctypes.addressof(prog_buffer), 0, 0) != 0
    ):
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_SECCOMP) failed")


def main(argv: list[str]) -> int:
    """The handler: FILE ARGS… from binfmt_misc. A program under /data starts filtered."""
    if not argv:
        print("usage: python -m pocketbench.emulator.seccomp FILE [ARGS...]", file=sys.stderr)
        return 2
    path = argv[0]
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    if os.path.realpath(path).startswith("/data/"):
        install(TRAPPED_X86_64)
    # By descriptor: its name (/proc/self/fd/N) has no extension, so the rule does not match again.
    os.execve(fd, [path, *argv[1:]], dict(os.environ))
    return 127  # not reached


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
