"""Result columns are declared once (results/columns.py): the store's lists, the history's and the
comparison's columns, and docs/results-schema.md's tables all agree with that declaration."""

from __future__ import annotations

from pathlib import Path

from pocketbench.results.columns import INTEGER_COLUMNS, RESULT_COLUMNS, SECTIONS, with_tables
from pocketbench.results.compare import COMPARE_COLUMNS
from pocketbench.results.history import RUN_COLUMNS
from pocketbench.results.store import COLUMNS, read_run

from tests.conftest import DATA

DOCS = Path(__file__).resolve().parents[1] / "docs" / "results-schema.md"
DECLARED = {c.name: c for c in RESULT_COLUMNS}


def test_the_docs_tables_are_generated_from_the_declaration():
    page = DOCS.read_text()
    assert with_tables(page) == page, "run: .venv/bin/python -m pocketbench.results.columns docs/results-schema.md"
    for section in SECTIONS:
        assert f"<!-- columns: {section} -->" in page, section


def test_each_column_is_declared_once_with_a_known_section():
    assert len(DECLARED) == len(RESULT_COLUMNS)
    assert {c.section for c in RESULT_COLUMNS} == set(SECTIONS)
    assert all(c.description and c.type for c in RESULT_COLUMNS)


def test_the_store_and_readers_use_the_declared_columns():
    assert [c.name for c in RESULT_COLUMNS if c.always] == COLUMNS
    assert all(DECLARED[c].type == "int" for c in INTEGER_COLUMNS), "a nullable-integer column must be declared int"
    assert all(DECLARED[c].section == "run" for c in RUN_COLUMNS)
    assert all(DECLARED[c].section == "comparison" for c in COMPARE_COLUMNS)


def test_every_column_of_a_saved_run_is_declared():
    """A run as pocketbench writes it (tests/data/example_run): nothing undocumented in its rows."""
    frame = read_run(DATA / "example_run")
    assert [c for c in frame.columns if c not in DECLARED] == []


def test_units_agree_with_the_names():
    suffixes = {"_ms": "ms", "_kb": "kB", "_bytes": "bytes", "_db": "dB", "_pct": "%"}
    for column in RESULT_COLUMNS:
        for suffix, unit in suffixes.items():
            if column.name.endswith(suffix):
                assert column.unit == unit, column.name
