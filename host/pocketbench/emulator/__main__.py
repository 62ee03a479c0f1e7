"""`python -m pocketbench.emulator --port N ...`: same as `pocketbench emulator`."""

import typer

from pocketbench.emulator.command import emulator_command

typer.run(emulator_command)
