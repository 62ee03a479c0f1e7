"""The emulated phone: adbd's side of the wire protocol over a real Android-shaped sandbox.

Tests and demos start one with `start_emulator()`; real adb clients cannot tell it from a
phone. See emulator.py for the handle, sysfs_script.py for power/thermal/cpufreq scripts
and faults.py for failures on demand. Names load on first use so that `pocketbench --help`
(which registers the `emulator` command) does not pay for asyncio and cryptography.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pocketbench.emulator.emulator import Emulator, start_emulator
    from pocketbench.emulator.faults import Faults
    from pocketbench.emulator.sysfs_script import Cluster, SysfsScript, Timeline, constant, ramp, steps

_WHERE = {
    "Emulator": "emulator",
    "start_emulator": "emulator",
    "Faults": "faults",
    "Cluster": "sysfs_script",
    "SysfsScript": "sysfs_script",
    "Timeline": "sysfs_script",
    "constant": "sysfs_script",
    "ramp": "sysfs_script",
    "steps": "sysfs_script",
}
__all__ = [
    "Cluster",
    "Emulator",
    "Faults",
    "SysfsScript",
    "Timeline",
    "constant",
    "ramp",
    "start_emulator",
    "steps",
]


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)
