"""A farm run's verdicts drawn by the report package: markdown (escaped), HTML (escaped, a section
of the page, not text spliced into it) and a terminal table that fits 80, 100 and 160 columns.

The verdicts are real: regress.verdicts over a synthetic history with a 25 % slowdown tonight.
"""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest
from pocketbench.farm.matrix import DEFAULT_THRESHOLDS
from pocketbench.farm.regress import verdicts
from pocketbench.report.terminal import render_verdicts
from pocketbench.report.verdict_table import NOTHING_CHANGED, build_verdict_table
from pocketbench.report.write import write_report
from pocketbench.results.store import load_run
from pocketbench.results.verdicts import Verdict
from rich.console import Console

from tests.conftest import DATA
from tests.test_farm_regress import RNG_SEED, night

DEVICE = "pix|el_<b>7</b>"  # markdown and HTML must show it as it is
NIGHTS = 8


def _judged(devices: tuple[str, ...] = (DEVICE,)) -> pd.DataFrame:
    rng = np.random.default_rng(RNG_SEED)
    rows = []
    for device in devices:
        tonight = [night(NIGHTS - 1, 12.5, rng, size=1_500_000)]  # slower and bigger tonight
        tonight.append(night(NIGHTS - 1, 10.0, rng, model="other"))  # a new model: nothing to compare with
        rows += [{**row, "device": device} for row in [night(i, 10.0, rng) for i in range(NIGHTS - 1)] + tonight]
    return verdicts(pd.DataFrame(rows), rows[-1]["run_id"], DEFAULT_THRESHOLDS)


@pytest.fixture(scope="module")
def table():
    judged = _judged((DEVICE, "galaxy-s24"))
    assert set(judged.loc[judged["model"] == "digits_cnn", "verdict"]) >= {Verdict.REGRESSION}
    return build_verdict_table(judged, "night-07", ["cells: 2 ok, 0 not run, 0 failed"], ["b: quarantined"])


def _report(fmt: str, table) -> str:
    frame, manifest, _ = load_run(str(DATA / "example_run"), DATA)
    return write_report(fmt, frame, manifest, DATA, None, None, verdicts=table)


def test_the_model_lists_changes_and_counts_the_rest(table):
    assert table.folded == [("model", "digits_cnn"), ("variant", "int8")]  # the same in every row
    assert [c.key for c in table.columns] == ["device", "metric", "verdict", "change", "p", "detail"]
    assert set(table.verdicts) == {Verdict.REGRESSION}
    assert [row[:2] for row in table.rows] == [
        ["galaxy-s24", "latency_p50_ms"], ["galaxy-s24", "size_bytes"],
        [DEVICE, "latency_p50_ms"], [DEVICE, "size_bytes"],
    ]  # fmt: skip
    assert table.counts.startswith("4 regression(s), 0 improvement(s)")
    assert any(line.startswith("not judged (") and "no earlier good run" in line for line in table.not_judged)


def test_markdown_escapes_names_and_keeps_the_section_after_the_warnings(table):
    text = _report("md", table)
    section = text[text.index("## Regression verdicts — night-07") :]
    assert text.index("**Warnings**") < text.index("## Regression verdicts")
    assert "pix\\|el\\_\\<b>7\\</b>" in section and "| pix|el" not in section
    header = next(line for line in section.splitlines() if line.startswith("| device"))
    assert header.count(" | ") == len(table.headers) - 1  # the escaped | did not add a column
    assert "_model digits\\_cnn · variant int8_" in section and "_4 regression(s)" in section
    assert "- ⚠ b: quarantined" in section and "- ⚠ not judged (" in section


def test_html_is_one_page_with_the_verdicts_escaped(table):
    text = _report("html", table)
    assert text.count("</body></html>") == 1 and text.rstrip().endswith("</body></html>")
    section = text[text.index("<h2>Regression verdicts — night-07</h2>") :]
    assert "pix|el_&lt;b&gt;7&lt;/b&gt;" in section and "<b>7</b>" not in section
    assert section.count("<tr class=regression>") == 4
    assert text.index("<h2>Regression verdicts") < text.index("<h2>Latency distributions")


def test_no_change_says_so_everywhere():
    quiet = _judged()
    quiet = quiet[quiet["verdict"] != Verdict.REGRESSION]
    table = build_verdict_table(quiet, "night-07")
    assert not table.rows
    assert NOTHING_CHANGED in _report("md", table) and NOTHING_CHANGED in _report("html", table)
    assert NOTHING_CHANGED in _draw(table, 80)


def _draw(table, width: int, color: bool = False) -> str:
    out = io.StringIO()
    Console(file=out, width=width, color_system="standard" if color else None).print(render_verdicts(table))
    return out.getvalue()


@pytest.mark.parametrize("width", [80, 100, 160])
@pytest.mark.parametrize("devices", [(DEVICE,), ("pixel-7-pro", "galaxy-s24")])
def test_the_terminal_table_fits_and_breaks_no_figure_or_name(devices, width):
    table = build_verdict_table(_judged(devices), "night-07")
    assert ("device" in [c.key for c in table.columns]) == (len(devices) > 1)
    text = _draw(table, width)
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= width
    flat = " ".join(text.split())
    hidden = set()
    if "not shown at" in flat:
        listed = flat.split(f"not shown at {width} columns: ", 1)[1].split(" (", 1)[0]
        hidden = {key.strip() for key in listed.split(",")}
    assert not hidden & {"device", "model", "variant", "metric", "verdict"}
    for position, column in enumerate(table.columns):
        if column.key in hidden:
            continue
        for row in table.rows:
            words = row[position].split() if column.prose else [row[position]]
            for word in words:  # names and figures whole on one line; prose breaks only between words
                assert any(word in line for line in lines), (column.key, word)
    assert "detail" not in hidden if width >= 100 else not hidden or "the markdown and HTML reports" in flat
    assert "+50.0%" in text and ("detail" in hidden or "Mann-Whitney" in text)


def test_the_verdict_is_coloured(table):
    assert "\x1b[1;31mregression" in _draw(table, 100, color=True)
