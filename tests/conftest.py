"""Shared test setup: the emulated-phone fixtures (phone, phone_factory, host_adb)."""

pytest_plugins = ["pocketbench.devices.emulator.fixtures"]
