"""Readings and messages that must not mislead (issue 14 item 8): charging only when the battery
says so, "slower" only when significant, markup printed literally, no doubled prefixes."""

from __future__ import annotations

import io
import subprocess
import sys

import pandas as pd
import pytest
from pocketbench.compress.recipe import RecipeError
from pocketbench.compress.sweepfile import load_sweep
from pocketbench.progress import RichReporter
from pocketbench.report.cautions import warnings
from rich.console import Console

from tests.test_reports import _row

SEEN_DISCHARGING = "current in µA, negative while discharging (seen)"


def test_charging_is_said_from_the_typed_flag_not_from_words():
    measured = _row("fp32", energy_status=SEEN_DISCHARGING, energy_mj_per_inference=0.12, energy_charging=False)
    charging = _row("int8", energy_status="battery was Charging during the run: unplug USB", energy_charging=True)
    allowed = _row(
        "int8-dynamic", energy_status="charging allowed (--allow-charging)", energy_mj_per_inference=0.1,
        energy_charging=True,
    )  # fmt: skip
    not_charging = _row(
        "int8-per-tensor", energy_status="not available: battery status Not charging", energy_charging=False
    )
    # Words alone decide nothing: a status that reads like charging on an unflagged row is an energy note.
    worded = _row("w4", energy_status="battery was Charging during the run: unplug USB", energy_charging=False)
    notes = warnings(pd.DataFrame([measured, charging, allowed, not_charging, worded]))
    assert [n for n in notes if n.startswith("charging")] == [
        "charging: m int8 on d: battery was Charging during the run: unplug USB",
        "charging: m int8-dynamic on d: charging allowed (--allow-charging)",
    ]
    assert "energy not measured on d (1 cell(s)): not available: battery status Not charging" in notes
    assert "energy not measured on d (1 cell(s)): battery was Charging during the run: unplug USB" in notes


@pytest.mark.parametrize("significant", [False, True])
def test_int8_is_called_slower_only_when_the_difference_is_significant(significant):
    rows = [_row("fp32"), _row("int8", speedup_vs_fp32=0.93, speedup_significant=significant)]
    slower = [n for n in warnings(pd.DataFrame(rows)) if "slower than fp32" in n]
    assert len(slower) == int(significant)


def test_reporter_messages_and_progress_print_brackets_literally():
    out = io.StringIO()
    with RichReporter(Console(file=out, width=200, color_system=None)) as reporter:
        reporter.note('farm.toml: one [[devices]] table per phone; variants = ["fp32"]', "✗")
        reporter.note("[bold]plain[/]")
        with reporter.status("measuring [x] on [red]"):
            pass
    text = out.getvalue()
    assert '✗ farm.toml: one [[devices]] table per phone; variants = ["fp32"]' in text
    assert "[bold]plain[/]" in text


def test_a_cli_error_prints_brackets_literally(tmp_path):
    sweep = tmp_path / "s.toml"
    sweep.write_text('models = ["digits_cnn"]\n')
    result = subprocess.run(
        [sys.executable, "-m", "pocketbench", "bench", "--sweep", str(sweep), "--results", str(tmp_path / "r")],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 1
    assert "needs a [variants] table" in result.stderr, result.stderr


def test_a_sweep_file_error_names_the_variant_once(tmp_path):
    sweep = tmp_path / "s.toml"
    sweep.write_text('[variants]\np = { steps = [{ type = "quantize" }, { type = "quantize" }] }\n')
    with pytest.raises(RecipeError) as caught:
        load_sweep(sweep)
    assert str(caught.value).count("variant 'p'") == 1, caught.value
    assert "quantize appears more than once" in str(caught.value)


def test_names_in_tables_print_literally():
    from pocketbench.report.terminal import render
    from pocketbench.results.store import add_relative_columns, to_frame

    rows = [{**_row("fp32", latency_p50_ms=1.0), "model": "[b]m[/b]"}, _row("[red]mine[/]", latency_p50_ms=2.0)]
    out = io.StringIO()
    Console(file=out, width=160, color_system=None).print(render(add_relative_columns(to_frame(rows)), "r"))
    assert "[red]mine[/]" in out.getvalue() and "[b]m[/b]" in out.getvalue()
