"""Shared pieces of the farm tests: tiny models that export in seconds, and local "phones".

A `Phone` is this computer's real runner under its own device id, with a real "cable": a file
whose removal makes every probe of the phone fail, as a phone that dropped off the network.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

from pocketbench.devices.local import LocalDevice
from pocketbench.errors import DeviceError
from pocketbench.farm.matrix import Matrix, parse_matrix

MODELS = """
import torch
from pocketbench.models.registry import ModelBundle


def _bundle(module, width):
    x = torch.randn(1, width, generator=torch.Generator().manual_seed(0))
    return ModelBundle(module=module.eval(), example_inputs=(x,), calibration=lambda: [(x,)], eval_inputs=[(x,)])


def small():
    torch.manual_seed(0)
    return _bundle(torch.nn.Sequential(torch.nn.Linear(16, 32), torch.nn.ReLU(), torch.nn.Linear(32, 4)), 16)


def wide():
    torch.manual_seed(1)
    return _bundle(torch.nn.Sequential(torch.nn.Linear(64, 128), torch.nn.ReLU(), torch.nn.Linear(128, 8)), 64)
"""


class Phone(LocalDevice):
    """This computer's runner under another device id, reachable while its cable file exists."""

    def __init__(self, device_id: str, cable: Path) -> None:
        super().__init__(timeout_s=120)
        self.device_id = device_id
        self.cable = cable
        cable.touch()

    def info(self):
        if not self.cable.exists():
            raise DeviceError(f"{self.device_id}: connection refused (device offline)", serial=self.device_id)
        return replace(super().info(), device_id=self.device_id, kind="test-phone")

    def benchmark(self, job):
        if not self.cable.exists():
            raise DeviceError(f"{self.device_id}: connection reset while measuring", serial=self.device_id)
        return super().benchmark(job)


def write_models(folder: Path) -> Path:
    path = folder / "farm_models.py"
    path.write_text(MODELS)
    return path


def matrix(
    models_file: Path,
    devices: list[tuple[str, str]],
    models: tuple[str, ...] = ("small",),
    variants: tuple[str, ...] = ("fp32",),
    **run: int,
) -> Matrix:
    data = {
        "name": "test-farm",
        "variants": list(variants),
        "models": [f"{models_file}:{m}" for m in models],
        "devices": [{"name": name, "serial": serial} for name, serial in devices],
        "run": {"iterations": 8, "warmup": 1, "threads": 1, **run},
    }
    return parse_matrix(data, models_file.parent / "farm.toml")


def farm_killed_mid_run(folder: Path, matrix_file: str, run_id: str = "n1", after_cells: int = 2) -> list[str]:
    """Start `pocketbench farm MATRIX` in `folder` (results in `r/`) and SIGKILL its whole process
    group once `after_cells` cells are saved; returns the command, which resumes the run."""
    command = [sys.executable, "-m", "pocketbench", "farm", matrix_file, "--results", "r", "--run-id", run_id]
    process = subprocess.Popen(
        command, cwd=folder, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    cells = folder / "r" / run_id / "cells"
    deadline = time.monotonic() + 300
    while len(list(cells.glob("*.parquet"))) < after_cells and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.02)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    return command
