"""Every bad-input case: a one-line error naming model, variant and cause; other cells still run."""

import sys

import pandas as pd
import pytest
from pocketbench.devices.local import LocalDevice
from pocketbench.measure.sweep import BenchSettings, run_sweep
from pocketbench.results.store import RunStore

MODELS = """
import torch
from pocketbench.models.registry import ModelBundle


class DataDependent(torch.nn.Module):
    def forward(self, x):
        if x.sum() > 0:  # data-dependent control flow: torch.export refuses it
            return x * 2
        return x


def _bundle(module):
    x = torch.ones(1, 4)
    return ModelBundle(module=module, example_inputs=(x,), calibration=lambda: [(x,)], eval_inputs=[(x,)])


def good():
    return _bundle(torch.nn.Sequential(torch.nn.Linear(4, 3)))


def unexportable():
    return _bundle(DataDependent())


def broken():
    raise RuntimeError("checkpoint not found")
"""


class CrashingDevice(LocalDevice):
    """A local device whose runner process really dies of SIGABRT."""

    device_id = "crashing"

    def runner(self):
        return [sys.executable, "-c", "import os; os.abort()"], "python-runtime"


@pytest.fixture
def models_file(tmp_path):
    path = tmp_path / "models_under_test.py"
    path.write_text(MODELS)
    return path


def _sweep(tmp_path, models, variants, devices):
    store = RunStore(tmp_path / "results")
    store.write_manifest({}, {})
    failures = run_sweep(models, variants, devices, BenchSettings(iterations=3, warmup=1), store)
    return failures, store.finish()


def test_failures_become_rows_and_the_good_cells_still_run(tmp_path, models_file):
    models = [f"{models_file}:good", f"{models_file}:unexportable", f"{models_file}:broken", "no_such_model"]
    failures, frame = _sweep(tmp_path, models, ["fp32", "int4000"], [LocalDevice()])
    status = {(r.model.rsplit(":", 1)[-1], r.variant): (r.status, r.error) for r in frame.itertuples()}
    assert status[("good", "fp32")][0] == "ok"
    assert pd.isna(status[("good", "fp32")][1])  # the saved frame: a missing error is NaN in a str column
    assert status[("good", "int4000")][0] == "recipe_error"
    assert "unknown variant 'int4000'" in status[("good", "int4000")][1]
    assert status[("unexportable", "fp32")][0] == "export_error"
    assert "unexportable fp32: export failed" in status[("unexportable", "fp32")][1]
    assert status[("broken", "fp32")] == ("model_error", status[("broken", "fp32")][1])
    assert "factory raised RuntimeError: checkpoint not found" in status[("broken", "fp32")][1]
    assert status[("no_such_model", "fp32")][0] == "model_error"
    assert failures == len(frame) - 1
    assert all("\n" not in e for e in frame["error"].dropna())


def test_a_crashing_runner_is_a_failed_cell_not_a_dead_sweep(tmp_path, models_file):
    failures, frame = _sweep(tmp_path, [f"{models_file}:good"], ["fp32"], [CrashingDevice(), LocalDevice()])
    by_device = frame.set_index("device")
    assert by_device.loc["crashing", "status"] == "crashed"
    assert "exit" in by_device.loc["crashing", "error"]
    assert by_device.loc["local", "status"] == "ok"
    assert failures == 1
