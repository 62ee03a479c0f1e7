"""`python -m pocketbench.devices.emulator --port N ...`: same as `pocketbench emulator`."""

import typer

from pocketbench.devices.emulator.command import emulator_command

typer.run(emulator_command)
