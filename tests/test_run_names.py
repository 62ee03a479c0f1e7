"""Issue 14 item 1: a name a user gives (run id, farm or device name) never becomes a path
outside the results folder; `history` names the folders it cannot read instead of hiding them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from pocketbench.errors import PocketbenchError
from pocketbench.names import inside, safe_name
from pocketbench.results.history import load_history
from pocketbench.results.store import RunStore, resolve_run

from tests.farm_support import write_models

MATRIX = """
name = "names-farm"
variants = ["fp32"]
models = ["{models}:small"]

[[devices]]
name = "here"
serial = "local"

[run]
iterations = 3
warmup = 1
threads = 1
"""


def _farm(tmp_path: Path, run_id: str) -> subprocess.CompletedProcess:
    (tmp_path / "farm.toml").write_text(MATRIX.format(models=write_models(tmp_path)))
    argv = [sys.executable, "-m", "pocketbench", "farm", "farm.toml", "--results", "R", "--run-id", run_id]
    return subprocess.run(argv, capture_output=True, text=True, timeout=300, cwd=tmp_path, check=False)


def _tree(folder: Path) -> set[Path]:
    return {p for p in folder.rglob("*")}


@pytest.mark.parametrize("run_id", ["../escape", "../../../../etc/passwd", "a/b"])
def test_farm_refuses_a_run_id_that_is_a_path_and_writes_nothing(tmp_path, run_id):
    sandbox = tmp_path / "sandbox"
    sandbox.mkdir()
    before = _tree(tmp_path)
    result = _farm(sandbox, run_id)
    assert result.returncode == 1, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: run id {run_id!r} is not allowed"), result.stderr
    created = _tree(tmp_path) - before
    assert {p.relative_to(sandbox).as_posix() for p in created} <= {"farm.toml", "farm_models.py", "R"}


def test_farm_refuses_an_absolute_run_id(tmp_path):
    target = tmp_path / "elsewhere"
    result = _farm(tmp_path, str(target))
    assert result.returncode == 1
    assert "is not allowed" in result.stderr and "Traceback" not in result.stderr
    assert not target.exists()


@pytest.mark.parametrize("name", ["", ".", "..", "../x", "/abs", "a/b", "a\\b", ".hidden", "-x", "a..b", "a b", "é"])
def test_every_unsafe_name_is_refused_with_the_rule(name):
    with pytest.raises(PocketbenchError, match=r"is not allowed .*letters, digits"):
        safe_name(name, "run id")


def test_a_link_cannot_lead_a_name_out_of_its_root(tmp_path):
    root = tmp_path / "results"
    root.mkdir()
    (root / "link").symlink_to(tmp_path)
    assert inside(root, "20261201-run") == root / "20261201-run"
    with pytest.raises(PocketbenchError, match="leads outside"):
        inside(root, "link")


def test_the_store_and_the_run_lookup_use_the_rule(tmp_path):
    with pytest.raises(PocketbenchError, match=r"run id '\.\./x' is not allowed"):
        RunStore(tmp_path / "results", "../x")
    assert not (tmp_path / "x").exists()
    with pytest.raises(PocketbenchError, match=r"run id '\.\./x' is not allowed"):
        resolve_run("../x", tmp_path / "results")


def test_a_results_path_that_is_a_file_is_one_clear_error(tmp_path):
    (tmp_path / "results").write_text("not a folder")
    with pytest.raises(PocketbenchError, match="cannot create the run folder"):
        RunStore(tmp_path / "results", "run-1")


def test_history_names_the_folders_it_cannot_read(tmp_path):
    root = tmp_path / "results"
    store = RunStore(root, "good-run")
    store.write_manifest({}, {})
    store.write_cell({"model": "m", "variant": "fp32", "device": "local", "status": "ok"})
    store.finish()
    nested = root / "a" / "b"  # what `--run-id a/b` used to create
    nested.mkdir(parents=True)
    (nested / "manifest.json").write_text("{}")
    (root / "stray-file.txt").write_text("x")
    frame = load_history(root)
    assert list(frame["run_id"]) == ["good-run"]
    skipped = frame.attrs["skipped"]
    assert len(skipped) == 1 and str(root / "a") in skipped[0] and "no manifest.json" in skipped[0]
