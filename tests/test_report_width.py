"""The main table fits the terminal (issue 14 item 10): at 80, 100 and 160 columns no line is
wider than the terminal, no number or header word is broken across lines, the columns left out
are named with the options that show them, and `--columns` / `--wide` show what was left out.

Golden renderings at each width; regenerate after an intended change with POCKETBENCH_UPDATE_GOLDEN=1.
"""

from __future__ import annotations

import io

import pytest
from pocketbench.cli import app
from pocketbench.report.table import build_tables
from pocketbench.report.terminal import render
from pocketbench.results.compare import compare_runs
from pocketbench.results.store import load_run
from rich.console import Console
from typer.testing import CliRunner

from tests.conftest import DATA
from tests.test_reports import BASELINE, EXAMPLE, _golden

WIDTHS = (80, 100, 160)
CI_RUN = DATA / "ci_run"  # a real bench of digits_cnn with 3 repetitions: CIs on p50 and speedup


def _draw(frame, run_id, width, baseline_id=None, **options) -> str:
    out = io.StringIO()
    # As the CLI prints it: not cropped, so --wide may run past the terminal's edge.
    Console(file=out, width=width, color_system=None).print(render(frame, run_id, baseline_id, **options), crop=False)
    return out.getvalue()


def _runs():
    frame, manifest, _ = load_run(str(EXAMPLE), DATA)
    baseline, base_manifest, _ = load_run(str(BASELINE), DATA)
    ci, ci_manifest, _ = load_run(str(CI_RUN), DATA)
    return {
        "example": (compare_runs(frame, baseline), manifest["run_id"], base_manifest["run_id"]),
        "ci": (compare_runs(ci, frame), ci_manifest["run_id"], manifest["run_id"]),
    }


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("run", ["example", "ci"])
def test_the_table_matches_its_golden_rendering(run, width):
    frame, run_id, baseline_id = _runs()[run]
    text = _draw(frame, run_id, width, baseline_id)
    assert text == _golden(f"{run}_report_{width}.txt", text)


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("run", ["example", "ci"])
def test_no_line_overflows_and_no_cell_is_broken(run, width):
    frame, run_id, baseline_id = _runs()[run]
    text = _draw(frame, run_id, width, baseline_id)
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= width
    (table,) = build_tables(frame)
    hidden = _hidden(text)
    for position, header in enumerate(table.headers):
        if position and table.columns[position - 1].key in hidden:
            continue
        for part in header.split("\n"):  # a header's words stay together on their line
            assert any(part in line for line in lines), (header, part)
        for row in table.rows:
            for part in row[position].split("\n"):  # a value and its CI each on one line, whole
                assert any(part in line for line in lines), (header, part)
    shown_keys = {c.key for c in table.columns} - hidden
    assert shown_keys >= {"p50", "size"} and ("speedup" in shown_keys or width < 100)
    if hidden:
        assert "--wide shows every column" in " ".join(text.split())


def _hidden(text: str) -> set[str]:
    """The keys the note under the table names as not shown."""
    flat = " ".join(text.split())
    if "not shown at" not in flat:
        return set()
    listed = flat.split("not shown at", 1)[1].split(":", 1)[1].split("(--wide", 1)[0]
    return {key.strip() for key in listed.split(",")}


def test_ci_sits_on_its_own_line_under_the_p50():
    frame, run_id, baseline_id = _runs()["ci"]
    lines = _draw(frame, run_id, 80, baseline_id).splitlines()
    (table,) = build_tables(frame)
    p50 = table.headers.index("p50 ms\n[95% CI]")
    value, ci = table.rows[0][p50].split("\n")
    assert ci.startswith("[") and ci.endswith("]")
    row = next(i for i, line in enumerate(lines) if line.lstrip().startswith(table.rows[0][0] + " "))
    assert value in lines[row] and ci in lines[row + 1]


def test_wide_and_columns_show_what_was_left_out():
    frame, run_id, baseline_id = _runs()["ci"]
    narrow = _hidden(_draw(frame, run_id, 80, baseline_id))
    assert narrow, "the ci run is meant to need more than 80 columns"
    wide = _draw(frame, run_id, 80, baseline_id, wide=True)
    assert not _hidden(wide) and "not shown" not in wide
    (table,) = build_tables(frame)
    for header in table.headers:
        assert header.split("\n")[0] in wide
    picked = _draw(frame, run_id, 80, baseline_id, columns=["p50", "p90"])
    header_lines = " ".join(picked.split("─")[0].split())
    assert "p90" in header_lines and "p50 ms" in header_lines
    assert "size" not in header_lines and "speedup" not in header_lines
    assert "not shown: " in " ".join(picked.split())


def test_cli_options_reach_the_table_and_bad_keys_are_one_line():
    runner = CliRunner()
    result = runner.invoke(app, ["report", str(CI_RUN), "--columns", "p50,p90", "--results", str(DATA)])
    assert result.exit_code == 0, result.output
    assert "p90" in result.stdout and "(× fp32)" not in result.stdout
    wide = runner.invoke(app, ["report", str(CI_RUN), "--wide", "--results", str(DATA)])
    assert wide.exit_code == 0 and "not shown" not in wide.stdout
    bad = runner.invoke(app, ["report", str(CI_RUN), "--columns", "p50,latency", "--results", str(DATA)])
    assert bad.exit_code == 1 and "--columns 'p50,latency': unknown latency" in str(bad.exception)
