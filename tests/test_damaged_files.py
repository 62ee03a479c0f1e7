"""Every reader survives every file: each kind of file the store writes, damaged four ways, in a
finished and in a killed run, costs only that file's rows, and is named with why.

history, report (alone and compared) and the farm's verdicts run on every damaged folder; the
exit code stays 0 and the rest of the run is there.
"""

from __future__ import annotations

import io
import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
from pocketbench.cli import app
from pocketbench.farm.nightly import farm_history
from pocketbench.farm.regress import verdicts
from pocketbench.results.history import load_history
from pocketbench.results.store import PROGRESS, RunStore, atomic_write_parquet, parquet_bytes
from pocketbench.results.verdicts import VERDICTS_FILE
from typer.testing import CliRunner

FINISHED, KILLED, FARM = "20261201-010000-finish", "20261202-010000-killed", "nightly"
VARIANTS = ["fp32", "int8", "int8-dynamic"]
SLOW = [pytest.mark.slow]  # the CLI and the farm's verdicts on each of 48 damaged folders: a minute or two


def _row(variant: str, night: int) -> dict[str, object]:
    scale = 1.0 + VARIANTS.index(variant)
    samples = [scale * (1 + 0.01 * i) for i in range(8)]
    return {
        "model": "tiny",
        "variant": variant,
        "device": "local",
        "status": "ok",
        "latency_p50_ms": samples[4],
        "latency_samples_ms": samples,
        "size_bytes": int(1000 / scale),
        "peak_rss_kb": 5000,
        "started_at": f"2026-12-0{night}T01:00:0{VARIANTS.index(variant)}+00:00",
    }


def _events(variant: str) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "event": ["Method::execute"],
            "kind": ["method"],
            "op": ["execute"],
            "kernel": [""],
            "backend": [""],
            "calls": [1],
            "ms": [1.0],
            "p50_ms": [1.0],
        }
    )


def _run(root: Path, run_id: str, night: int, finish: bool, tmp: Path) -> None:
    store = RunStore(root, run_id=run_id)
    store.write_manifest({"kind": "farm", "farm": FARM}, {"pocketbench": "test"})
    trace = tmp / f"{run_id}.etdp"
    trace.write_bytes(b"etdump")
    for variant in VARIANTS[:2]:
        store.write_cell(_row(variant, night))
        store.write_profile("tiny", variant, "local", _events(variant), trace)
    if finish:
        store.write_cell(_row(VARIANTS[2], night))
        store.finish()
        verdict = {"device": "local", "model": "tiny", "variant": "fp32", "metric": "latency_p50_ms"}
        atomic_write_parquet(pd.DataFrame([{**verdict, "verdict": "no change"}]), store.folder / VERDICTS_FILE)
    else:  # killed while its third cell ran: a partial row in progress/, no results.parquet
        store.save_progress(_row(VARIANTS[2], night), "killed")


@pytest.fixture(scope="module")
def intact(tmp_path_factory):
    scratch = tmp_path_factory.mktemp("intact")
    root = scratch / "results"
    _run(root, FINISHED, 1, True, scratch)
    _run(root, KILLED, 2, False, scratch)
    return root


@pytest.fixture
def results(intact, tmp_path):
    """A copy of the two runs for one test to damage."""
    return Path(shutil.copytree(intact, tmp_path / "results"))


def _truncated(data: bytes) -> bytes:
    return data[: len(data) // 2]


def _garbage(data: bytes) -> bytes:
    return bytes((7 * i + 3) % 256 for i in range(len(data)))


def _empty(data: bytes) -> bytes:
    return b""


def _wrong_schema(data: bytes) -> bytes:
    if data.lstrip().startswith(b"{"):
        return json.dumps(["not", "a", "manifest"]).encode()
    return parquet_bytes(pd.DataFrame({"name": ["x"], "value": [1.0], "model": ["tiny"]}))


DAMAGE: dict[str, Callable[[bytes], bytes]] = {
    "truncated": _truncated, "garbage": _garbage, "empty": _empty, "wrong schema": _wrong_schema,
}  # fmt: skip
# Each kind of file the store writes, and the rows of its run that damaging it may cost.
FILES = {
    "manifest.json": 0,
    "results.parquet": 0,  # the cells hold the same rows
    "cells/0001": 1,
    f"{PROGRESS}/": 1,
    "profiles/": 0,
    VERDICTS_FILE: 0,
}


def _target(folder: Path, kind: str) -> Path | None:
    matches = sorted(p for p in folder.rglob("*") if p.is_file() and p.relative_to(folder).as_posix().startswith(kind))
    matches = [p for p in matches if p.suffix != ".etdp"]
    return matches[0] if matches else None


# Garbage in each file of each run in the fast suite; every other damage with the slow tests.
CASES = [
    pytest.param(run, kind, damage, id=f"{run[-6:]}-{kind}-{damage}", marks=[] if damage == "garbage" else SLOW)
    for run in (FINISHED, KILLED)
    for kind in FILES
    for damage in DAMAGE
]


@pytest.mark.parametrize(("run", "kind", "damage"), CASES)
def test_a_damaged_file_costs_only_its_own_rows(results, run, kind, damage):
    target = _target(results / run, kind)
    if target is None:
        pytest.skip(f"a {run[-6:]} run has no {kind}")
    target.write_bytes(DAMAGE[damage](target.read_bytes()))
    finished_reads_cells = run == KILLED or kind == "results.parquet"
    lost = FILES[kind] if finished_reads_cells else 0
    named = kind not in (VERDICTS_FILE, "profiles/") and (finished_reads_cells or kind == "manifest.json")

    history = load_history(results)
    assert len(history[history["run_id"] == run]) == 3 - lost
    assert len(history[history["run_id"] != run]) == 3
    assert any(str(target) in line for line in history.attrs["skipped"]) == named

    runner = CliRunner()
    as_csv = runner.invoke(app, ["history", "--results", str(results), "--format", "csv"])
    assert as_csv.exit_code == 0, as_csv.output
    assert len(pd.read_csv(io.StringIO(as_csv.stdout))) == 6 - lost
    other = KILLED if run == FINISHED else FINISHED
    report = runner.invoke(app, ["report", run, "--results", str(results)], env={"COLUMNS": "250"})
    assert report.exit_code == 0, (report.output, report.exception)
    assert (target.name in report.stdout) == (named or kind == "profiles/")
    for args in (["report", run, "--compare", other, "--format", "md"], ["report", other, "--compare", run]):
        shown = runner.invoke(app, [*args, "--results", str(results)], env={"COLUMNS": "250"})
        assert shown.exit_code == 0, (args, shown.output, shown.exception)

    nights, flagged = farm_history(results, FARM)
    table = verdicts(nights, KILLED, {}, min_samples=5, flagged=flagged)
    assert not table.empty or kind == "manifest.json"  # a farm run whose manifest is lost is not known as one
    named_by_farm = kind in ("manifest.json", VERDICTS_FILE) or (named and kind != "manifest.json")
    assert any(target.name in line for line in nights.attrs["skipped"]) == named_by_farm
