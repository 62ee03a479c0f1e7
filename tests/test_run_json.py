"""Every `--json` prints one document (report/run_json_schema.py): `bench --json` (tests/test_cli.py),
`report --json` with and without `--compare`, and `report --format json`, on saved runs."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from pocketbench.cli import app
from pocketbench.report.run_json_schema import RUN_JSON_SCHEMA, RUN_JSON_VERSION, schema_problems
from typer.testing import CliRunner

from tests.conftest import DATA

DOCS = Path(__file__).resolve().parents[1] / "docs" / "results-schema.md"
RUN, BASE = "20261129-073224-3addd4", "20261201-001851-aaaaaa"


@pytest.fixture
def results(tmp_path: Path) -> Path:
    shutil.copytree(DATA / "example_run", tmp_path / RUN)
    shutil.copytree(DATA / "ci_run", tmp_path / BASE)
    return tmp_path


@pytest.mark.parametrize(
    "args",
    [
        ["report", RUN, "--json"],
        ["report", RUN, "--json", "--compare", BASE],
        ["report", RUN, "--format", "json"],
        ["report", RUN, "--format", "json", "--compare", BASE],
    ],
    ids=["report", "report-compare", "format-json", "format-json-compare"],
)
def test_every_report_json_is_the_one_versioned_document(results, args):
    shown = CliRunner().invoke(app, [*args, "--results", str(results)])
    assert shown.exit_code == 0, shown.output
    document = json.loads(shown.stdout)
    assert schema_problems(document) == []
    assert document["schema_version"] == RUN_JSON_VERSION and document["run_id"] == RUN
    assert document["results_dir"] == str(results / RUN)
    base_id = json.loads((DATA / "ci_run" / "manifest.json").read_text())["run_id"]
    assert document["baseline_run_id"] == (base_id if "--compare" in args else None)
    assert document["rows"] and document["tables"]
    if "--compare" in args:  # the comparison columns ride along in the same rows
        assert "latency_p50_change_pct" in document["rows"][0]


def test_the_checker_names_what_breaks_the_schema():
    """A check that cannot fail proves nothing: each kind of break is named with its place."""
    good = {
        "schema": "pocketbench.run",
        "schema_version": RUN_JSON_VERSION,
        "run_id": "r",
        "results_dir": "d",
        "baseline_run_id": None,
        "tables": [],
        "warnings": [],
        "rows": [],
    }
    assert schema_problems(good) == []
    assert schema_problems({**good, "schema_version": 0}) == ["$.schema_version: 0 is not 1"]
    assert schema_problems({**good, "extra": 1}) == ["$: unknown key 'extra'"]
    assert schema_problems({**good, "warnings": ["a", 2]}) == ["$.warnings[1]: int is not string"]
    assert schema_problems({**good, "rows": [{"model": "m"}]}) == [
        f"$.rows[0]: no {key!r}" for key in ("run_id", "variant", "device", "status")
    ]
    del good["tables"]
    assert schema_problems(good) == ["$: no 'tables'"]


def test_the_documented_schema_is_the_checked_one():
    """docs/results-schema.md shows the schema the checker uses, verbatim."""
    blocks = re.findall(r"```json\n(.*?)```", DOCS.read_text(), re.S)
    assert any(json.loads(b) == RUN_JSON_SCHEMA for b in blocks), "regenerate the schema block in the docs"
