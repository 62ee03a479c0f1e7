"""The host runner is found through paths.py: $POCKETBENCH_RUNNER, else the checkout's build, and a
wrong setting is one line naming the fix."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pocketbench.errors import PocketbenchError
from pocketbench.paths import RUNNER_ENV, checkout_root, host_runner, runner_build_dir

ROOT = Path(__file__).resolve().parents[1]


def test_the_checkout_and_its_build_folder_are_found_from_the_package():
    assert checkout_root() == ROOT
    assert runner_build_dir() == ROOT / "device_runner" / "build"


def test_the_environment_names_the_runner(monkeypatch, tmp_path):
    runner = tmp_path / "my_runner"
    runner.write_text("#!/bin/sh\n")
    runner.chmod(0o755)
    monkeypatch.setenv(RUNNER_ENV, str(runner))
    assert host_runner() == runner


@pytest.mark.parametrize("make", ["missing", "not executable"])
def test_a_wrong_runner_setting_is_one_line_naming_the_fix(monkeypatch, tmp_path, make):
    runner = tmp_path / "pocket_runner"
    if make == "not executable":
        runner.write_text("")
        os.chmod(runner, 0o644)
    monkeypatch.setenv(RUNNER_ENV, str(runner))
    with pytest.raises(PocketbenchError) as caught:
        host_runner()
    assert str(caught.value) == (
        f"{RUNNER_ENV}={runner} is not an executable runner: build one with `just build-runner` or unset it"
    )
