"""Devices that run a .pte: this computer (local), phones over adb, and the emulated phone."""
