"""The version is written once (pyproject.toml) and every place that reports it agrees."""

import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import pocketbench

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"


def test_the_package_reports_the_version_in_pyproject():
    written = tomllib.loads(PYPROJECT.read_text())["project"]["version"]
    assert pocketbench.__version__ == written == metadata.version("pocketbench")


def test_the_cli_prints_the_package_version_and_exits_0():
    proc = subprocess.run(
        [sys.executable, "-m", "pocketbench", "--version"], capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"pocketbench {pocketbench.__version__}"
    assert proc.stderr == ""


def test_no_other_file_writes_the_version_down():
    """A second literal copy is how versions drift apart."""
    host = PYPROJECT.parent / "host" / "pocketbench"
    copies = [p for p in host.rglob("*.py") if f'"{pocketbench.__version__}"' in p.read_text()]
    assert copies == []
