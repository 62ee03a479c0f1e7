"""Shared fixtures: an isolated artifact cache and results folder for the whole session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

DATA = Path(__file__).parent / "data"

# The emulated-phone fixtures: phone, phone_factory, host_adb (Debian adb, isolated).
pytest_plugins = ["pocketbench.emulator.fixtures"]


@pytest.fixture(scope="session", autouse=True)
def isolated_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Artifacts and trained weights go to a per-session cache, never the user's."""
    cache = tmp_path_factory.mktemp("pocketbench-cache")
    previous = os.environ.get("POCKETBENCH_CACHE")
    os.environ["POCKETBENCH_CACHE"] = str(cache)
    yield cache
    if previous is None:
        os.environ.pop("POCKETBENCH_CACHE", None)
    else:
        os.environ["POCKETBENCH_CACHE"] = previous


@pytest.fixture(scope="session")
def digits_sweep(tmp_path_factory: pytest.TempPathFactory):
    """One real sweep of digits_cnn in fp32, int8 and int8-dynamic on the local device, with the
    default protocol (calibrated batches, adaptive processes) on a short per-cell budget."""
    from pocketbench.devices.local import LocalDevice
    from pocketbench.measure.sweep import BenchSettings, run_sweep
    from pocketbench.results.store import RunStore

    store = RunStore(tmp_path_factory.mktemp("results"))
    store.write_manifest({"test": "digits_sweep"}, {})
    failures = run_sweep(
        ["digits_cnn"],
        ["fp32", "int8", "int8-dynamic"],
        [LocalDevice()],
        BenchSettings(iterations=20, cell_budget_s=3.0),
        store,
    )
    return failures, store.finish(), store
