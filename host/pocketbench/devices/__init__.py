"""Devices that run a .pte: the `Device` protocol (base.py), this computer (local.py), phones over
adb (adb/), the runner bundles phones get (bundle/), a device's shell (shell.py) and choosing a
device (select.py). The emulated phone is a separate package, `pocketbench.emulator`."""
