"""Shared fixtures: an isolated artifact cache and results folder for the whole session."""

from __future__ import annotations

import os
import types
from pathlib import Path

import pytest

DATA = Path(__file__).parent / "data"

# The emulated-phone fixtures (phone, phone_factory, host_adb) come from the package's pytest
# plugin, registered by the `pytest11` entry point in pyproject.toml.


# Under pytest-xdist (`just test`, `just test-fast`: one worker per core) each worker runs torch on
# one thread: two workers with a thread per core each keep both cores busy, where more threads
# would only wait on each other. Set before torch is imported, so CLI subprocesses inherit it.
WORKER = os.environ.get("PYTEST_XDIST_WORKER")
if WORKER:
    os.environ.setdefault("OMP_NUM_THREADS", "1")


# What the xdist workers of one session share: entries keyed by content and computed under a file
# lock, so no model trains (or exports) twice. The rest of the cache (emulated phones announced for
# discovery, leases, logs) stays per worker: one worker's phones are not another's.
SHARED = ("weights", "artifacts", "sensitivity", "checkpoints")


@pytest.fixture(scope="session", autouse=True)
def isolated_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Artifacts and trained weights go to a per-session cache, never the user's."""
    cache = tmp_path_factory.mktemp("pocketbench-cache")
    if WORKER:
        shared = tmp_path_factory.getbasetemp().parent / "pocketbench-shared"
        for name in SHARED:
            (shared / name).mkdir(parents=True, exist_ok=True)
            (cache / name).symlink_to(shared / name, target_is_directory=True)
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

    from tests.runner_support import host_runner

    # The native runner, built first: without it the local device runs the Python runtime, which
    # has no sampler thread (no RSS + swap samples), and the rows would depend on which test ran first.
    host_runner()
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


# `just test-fast` runs every test not marked slow. A test is marked by what it does, decided here
# per test so that new tests follow the rule without remembering it:
#   phone         it starts an emulated phone (a sandbox and its processes per test)
#   qemu          ... one whose ABI is arm64-v8a (aarch64 programs under qemu-user)
#   needs_runner  its body or a fixture it uses calls the runner helpers (`tests/runner_support.py`:
#                 native and aarch64 builds, exported .pte files, runner processes)
#   training      it trains models (set by the module's `pytestmark` or on the test)
# and each of these is also `slow`. Tests that measure models end to end (bench, sweep or farm runs:
# exports and runner processes per cell) carry `pytest.mark.slow` themselves. A pure test in a
# module that also builds the runner stays fast.
PHONE_FIXTURES = {"phone", "phone_factory", "arm64_phone", "host_adb"}
SLOW_FIXTURES = {"digits_sweep"}
IMPLY_SLOW = ("phone", "qemu", "needs_runner", "training")


def _code_names(code: types.CodeType) -> set[str]:
    """Every global or attribute name a function's code (nested functions included) refers to."""
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= _code_names(const)
    return names


def _calls_runner_support(function: object) -> bool:
    from tests import runner_support

    code, namespace = getattr(function, "__code__", None), getattr(function, "__globals__", {})
    if code is None:
        return False
    for name in _code_names(code):
        value = namespace.get(name)
        if value is runner_support or getattr(value, "__module__", None) == runner_support.__name__:
            return True
    return False


def _functions(item: pytest.Item) -> list[object]:
    """The test function and every fixture function it uses, directly or not."""
    info = getattr(item, "_fixtureinfo", None)
    defs = info.name2fixturedefs.values() if info is not None else ()
    return [getattr(item, "function", None), *(d.func for chain in defs for d in chain)]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        used = set(getattr(item, "fixturenames", ()))
        if used & PHONE_FIXTURES:
            item.add_marker(pytest.mark.phone)
        if "arm64_phone" in used:
            item.add_marker(pytest.mark.qemu)
        if any(_calls_runner_support(f) for f in _functions(item)):
            item.add_marker(pytest.mark.needs_runner)
        if used & SLOW_FIXTURES or any(item.get_closest_marker(m) for m in IMPLY_SLOW):
            item.add_marker(pytest.mark.slow)
    # `just test` hands whole modules to its workers in this order (`--dist loadfile
    # --no-loadscope-reorder`; by default xdist would start the modules with most tests first): the
    # modules that train a model first, so that no long module starts last and leaves one worker
    # running alone at the end.
    training = {item.path for item in items if item.get_closest_marker("training")}
    items.sort(key=lambda item: item.path not in training)
