"""Issue 14 items 2 and 4: no traceback reaches a user (one line and an exit code; the traceback
in a log, `--debug` prints it), and exit codes a nightly job can trust."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.farm_support import write_models


def _cli(*args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    import os

    return subprocess.run(
        [sys.executable, "-m", "pocketbench", *args],
        capture_output=True, text=True, timeout=timeout, cwd=cwd, check=False, env={**os.environ, **(env or {})},
    )  # fmt: skip


def _one_error_line(result: subprocess.CompletedProcess) -> str:
    # The run's plan (what it will measure) is stated before any work: not an error line.
    lines = [line for line in result.stderr.splitlines() if line.strip() and not line.startswith("plan: ")]
    assert "Traceback" not in result.stderr, result.stderr
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


@pytest.mark.parametrize(
    ("model", "says"),
    [
        ("../x:y", "'../x' is neither a .py file nor a module name"),
        (":", "'' is not a factory name"),
        ("os:", "'' is not a factory name"),
        ("a b:c", "'a b' is neither a .py file nor a module name"),
        ("nosuch_pkg_xyz:f", "cannot import nosuch_pkg_xyz"),
    ],
)
def test_a_bad_model_reference_is_one_line_and_nothing_runs(tmp_path, model, says):
    result = _cli("bench", "--model", model, "--variants", "fp32", "--device", "local", "--results", "R", cwd=tmp_path)
    assert result.returncode == 1
    assert says in _one_error_line(result)
    assert not (tmp_path / "R").exists()


def test_every_bad_model_and_variant_is_named_in_one_error_before_any_work(tmp_path):
    result = _cli(
        "bench", "--model", "nosuch_model", "--model", "digits_cnn", "--model", "../x:y",
        "--variants", "fp32,int9,prune50+int7", "--device", "tcp:127.0.0.1:1", "--results", "R", cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 1
    line = _one_error_line(result)
    assert line.startswith("error: 4 bad name(s), nothing was run:")
    for name in ("unknown model 'nosuch_model'", "'../x'", "unknown variant 'int9'", "unknown variant 'prune50+int7'"):
        assert name in line
    assert "digits_cnn'" not in line.split("use one of")[0]
    assert not (tmp_path / "R").exists()  # no run folder: the device was never touched either


def test_a_usage_error_is_one_line_naming_the_help(tmp_path):
    result = _cli("bench", "--iterations", "many", cwd=tmp_path)
    assert result.returncode == 1
    line = _one_error_line(result)
    assert "'--iterations'" in line and "`pocketbench bench --help` lists the options" in line


BROKEN_SCORE = """
import torch
from pocketbench.models.registry import ModelBundle


def scored():
    x = torch.ones(1, 4)

    def score(outputs):
        return {}["labels"]  # a user's scoring function with a bug

    module = torch.nn.Sequential(torch.nn.Linear(4, 3)).eval()
    return ModelBundle(module=module, example_inputs=(x,), calibration=lambda: [(x,)], eval_inputs=[(x,)], score=score)
"""


@pytest.mark.slow  # measures a cell in a subprocess
def test_an_unexpected_error_during_a_run_leaves_its_traceback_in_the_run_folder(tmp_path):
    (tmp_path / "m.py").write_text(BROKEN_SCORE)
    result = _cli(
        "bench", "--model", "m.py:scored", "--variants", "fp32", "--device", "local", "--iterations", "2",
        "--repetitions", "1", "--run-id", "run-1", "--results", "R", cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 2
    line = _one_error_line(result)
    (log,) = (tmp_path / "R" / "run-1").glob("crash-*.log")
    assert "KeyError" in line and str(log.relative_to(tmp_path)) in line
    assert "Traceback" in log.read_text()


FARM = """
name = "codes"
variants = {variants}
models = [{models}]

[[devices]]
name = "{device_name}"
serial = "{serial}"

[run]
iterations = 5
warmup = 1
threads = 1
"""


def _farm_file(tmp_path: Path, models: str, variants: str, serial: str = "local", device_name: str = "here") -> None:
    text = FARM.format(models=models, variants=variants, serial=serial, device_name=device_name)
    (tmp_path / "farm.toml").write_text(text)


def test_a_farm_naming_unknown_models_and_variants_fails_before_any_phone_work(tmp_path):
    small = f'"{write_models(tmp_path)}:small"'
    _farm_file(tmp_path, f'"nosuch_model", {small}', '["fp32", "int9"]', serial="tcp:127.0.0.1:1")
    result = _cli("farm", "farm.toml", "--results", "R", cwd=tmp_path)
    assert result.returncode == 1
    line = _one_error_line(result)
    assert "2 bad name(s), nothing was run" in line
    assert "unknown model 'nosuch_model'" in line and "unknown variant 'int9'" in line
    assert not (tmp_path / "R").exists()


def test_a_farm_whose_phone_is_not_there_exits_4_with_its_cells_not_run(tmp_path):
    import socket

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    small = f'"{write_models(tmp_path)}:small"'
    _farm_file(tmp_path, small, '["fp32"]', serial=f"tcp:127.0.0.1:{port}", device_name="gone")
    result = _cli("farm", "farm.toml", "--results", "R", "--run-id", "night", cwd=tmp_path, timeout=120)
    assert result.returncode == 4, result.stderr
    assert "cells: 0 ok, 1 not run, 0 failed" in result.stdout
    assert "nothing answers at 127.0.0.1" in result.stdout


@pytest.mark.slow  # measures a sweep in a subprocess
def test_bench_exits_4_when_a_cell_failed_and_keeps_the_others(tmp_path):
    (tmp_path / "m.py").write_text("def bad():\n    raise RuntimeError('no weights')\n")
    result = _cli(
        "bench", "--model", "m.py:bad", "--model", "digits_cnn", "--variants", "fp32", "--device", "local",
        "--iterations", "3", "--repetitions", "1", "--run-id", "r", "--results", "R", cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 4, result.stderr
    assert "1 cell(s) failed or are partial" in result.stderr
    assert len(list((tmp_path / "R" / "r" / "cells").glob("*.parquet"))) == 2


def test_the_exit_codes_are_in_the_help_and_the_docs():
    result = _cli("--help", cwd=Path.cwd())
    assert "Exit codes" in result.stdout and "regression" in result.stdout
    farm_help = _cli("farm", "--help", cwd=Path.cwd())
    assert "3 a significant regression" in farm_help.stdout.replace("\n", " ").replace("│", "").replace("  ", " ")
    guide = (Path(__file__).parents[1] / "docs" / "getting-started.md").read_text()
    assert "## Exit codes" in guide


@pytest.mark.slow  # measures a cell in a subprocess
def test_debug_prints_the_traceback_of_an_unexpected_error(tmp_path):
    """Readers now survive damaged files, so a user's scoring bug is the unexpected error here."""
    (tmp_path / "m.py").write_text(BROKEN_SCORE)
    result = _cli(
        "--debug", "bench", "--model", "m.py:scored", "--variants", "fp32", "--device", "local",
        "--iterations", "2", "--repetitions", "1", "--results", "R", cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 2
    assert "Traceback (most recent call last)" in result.stderr and "KeyError" in result.stderr
