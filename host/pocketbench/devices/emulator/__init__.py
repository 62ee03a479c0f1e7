"""The emulated phone: adbd's side of the wire protocol over a real Android-shaped sandbox.

Tests and demos start one with `start_emulator()`; real adb clients cannot tell it from a
phone. See emulator.py for the handle, sysfs_script.py for power/thermal/cpufreq scripts
and faults.py for failures on demand.
"""

from pocketbench.devices.emulator.emulator import Emulator, start_emulator
from pocketbench.devices.emulator.faults import Faults
from pocketbench.devices.emulator.sysfs_script import (
    Cluster,
    SysfsScript,
    Timeline,
    constant,
    ramp,
    steps,
)

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
