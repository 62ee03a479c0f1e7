"""The developer checks are wired as documented: pre-commit's config is valid and runs what
`just check` runs, with this checkout's tools."""

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_the_pre_commit_config_is_valid():
    proc = subprocess.run(
        [sys.executable, "-m", "pre_commit", "validate-config", ".pre-commit-config.yaml"],
        cwd=REPO, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_pre_commit_runs_the_checks_of_just_check_from_the_venv():
    config = (REPO / ".pre-commit-config.yaml").read_text()
    recipe = (REPO / "justfile").read_text().split("\ncheck:", 1)[1].split("\n\n", 1)[0]
    for tool in (".venv/bin/ruff check", ".venv/bin/ruff format", ".venv/bin/mypy", "tests/test_import_layers.py"):
        assert f"entry: {tool}" in config or (tool.endswith(".py") and tool in config), tool
    assert "lint lint-cpp typecheck" in recipe and "tests/test_import_layers.py" in recipe
    assert "entry: clang-format --dry-run -Werror" in config
