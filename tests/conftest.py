"""Shared fixtures: an isolated artifact cache and results folder for the whole session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

DATA = Path(__file__).parent / "data"

# The emulated-phone fixtures (phone, phone_factory, host_adb) come from the package's pytest
# plugin, registered by the `pytest11` entry point in pyproject.toml.


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
    from pocketbench.measure.settings import ProtocolSettings
    from pocketbench.measure.sweep import run_sweep
    from pocketbench.results.store import RunStore

    store = RunStore(tmp_path_factory.mktemp("results"))
    store.write_manifest({"test": "digits_sweep"}, {})
    failures = run_sweep(
        ["digits_cnn"],
        ["fp32", "int8", "int8-dynamic"],
        [LocalDevice()],
        ProtocolSettings(iterations=20, cell_budget_s=3.0),
        store,
    )
    return failures, store.finish(), store


# `just test-fast` runs every test not marked slow. A test is slow by what it uses, decided here
# so that new tests follow the rule without remembering it: an emulated phone (a sandbox and its
# processes per test), a session's real sweep, or the runner helpers (`tests/runner_support.py`:
# native and aarch64 builds, qemu, exported .pte files). Tests that measure models end to end
# (bench, sweep or farm runs: exports and runner processes per cell) carry `pytest.mark.slow`
# themselves, like the cross-build modules.
SLOW_FIXTURES = {"phone", "phone_factory", "arm64_phone", "host_adb", "digits_sweep"}


def _uses_runner_support(module: object) -> bool:
    from tests import runner_support

    return any(
        value is runner_support or getattr(value, "__module__", None) == runner_support.__name__
        for value in vars(module).values()
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        module = getattr(item, "module", None)
        if SLOW_FIXTURES.intersection(getattr(item, "fixturenames", ())) or (
            module is not None and _uses_runner_support(module)
        ):
            item.add_marker(pytest.mark.slow)
