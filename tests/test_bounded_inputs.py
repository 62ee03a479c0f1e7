"""Bounded inputs: every user-given string, list and number has a limit where it enters, and
going over it is one line naming the field and the limit, quoting at most ~200 characters of the
value. A large plan from a terminal waits for --yes. Fast: nothing here exports or measures."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
from pathlib import Path

import pytest
from pocketbench.compress.recipe import Recipe
from pocketbench.errors import SHOWN_CHARS, BadValue, PocketbenchError
from pocketbench.measure.plan import check_names, estimate
from pocketbench.measure.settings import ProtocolSettings

from tests.conftest import DATA
from tests.test_cli_fuzz import _run

# The most an error line may be: its own words, plus the value cut to SHOWN_CHARS.
LINE_MAX = SHOWN_CHARS + 400


def _one_line(code: int, err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip() and not line.startswith("plan:")]
    assert code == 1 and len(lines) == 1 and lines[0].startswith("error: "), (code, err[:2000])
    assert len(lines[0]) <= LINE_MAX, len(lines[0])
    return lines[0]


def _bench_sweep(tmp_path: Path, text: str) -> tuple[int, str]:
    sweep = tmp_path / "sweep.toml"
    sweep.write_text(text)
    code, _, err = _run(["bench", "-m", "digits_cnn", "--sweep", str(sweep), "--device", "local",
                         "--results", str(tmp_path / "R")])  # fmt: skip
    assert not (tmp_path / "R").exists()
    return code, err


def test_a_long_sweep_variant_name_is_refused_like_a_run_id(tmp_path):
    """A 10 MB variant name became 21 MB of output, a 20 MB manifest and `Argument list too long`."""
    code, err = _bench_sweep(tmp_path, f'[variants]\n{"v" * 1_000_000} = "int8"\n')
    line = _one_line(code, err)
    assert "not a variant name" in line and "over 64" in line and "(1000000 characters)" in line


def test_a_sweep_variant_name_with_a_path_is_refused(tmp_path):
    code, err = _bench_sweep(tmp_path, '[variants]\n"../../x" = "int8"\n')
    assert "it contains a path separator" in _one_line(code, err)


def test_a_huge_sweep_file_is_refused_before_it_is_read(tmp_path):
    code, err = _bench_sweep(tmp_path, "# " + "x" * (5 * 1024 * 1024) + "\n")
    assert "larger than the limit of 4 MB" in _one_line(code, err)


def test_a_huge_observer_string_is_quoted_in_200_characters(tmp_path):
    """A 10 MB observer gave a one-"line" error of 10 MB."""
    code, err = _bench_sweep(
        tmp_path, f'[variants.q]\nsteps = [{{ type = "quantize", observer = "{"o" * 2_000_000}" }}]\n'
    )
    line = _one_line(code, err)
    assert "observer" in line and "(2000000 characters)" in line


def test_calibration_batches_of_2_to_the_63_is_refused(tmp_path):
    code, err = _bench_sweep(
        tmp_path, '[variants.q]\nsteps = [{ type = "quantize", calibration_batches = 9223372036854775807 }]\n'
    )
    assert "calibration_batches must be at most 10000" in _one_line(code, err)


@pytest.mark.parametrize(
    ("flag", "says"),
    [
        ("--iterations", "--iterations must be at most 1000000"),
        ("--warmup", "--warmup must be at most 100000"),
        ("--repetitions", "--repetitions must be at most 1000"),
        ("--cell-budget", "--cell-budget must be at most"),
    ],
)
def test_counts_are_bounded_by_what_a_run_can_do(tmp_path, flag, says):
    code, _, err = _run(["bench", "-m", "digits_cnn", "-v", "fp32", "--device", "local", flag, "9223372036854775807",
                         "--results", str(tmp_path / "R")])  # fmt: skip
    assert says in _one_line(code, err)


def test_a_farm_of_more_cells_than_a_run_can_measure_is_refused(tmp_path):
    variants = [f"prune{k}" for k in range(1, 100)] + [f"sparse{k}" for k in range(1, 100)] + ["fp32", "int8"]
    devices = "".join(f'[[devices]]\nname = "d{i}"\nserial = "tcp:127.0.0.1:{1000 + i}"\n' for i in range(60))
    (tmp_path / "big.toml").write_text(
        f'variants = {variants!r}\nmodels = ["digits_cnn"]\n'.replace("'", '"') + devices
    )
    code, _, err = _run(["farm", str(tmp_path / "big.toml"), "--results", str(tmp_path / "R")])
    assert code == 1 and "12000 cells (models × variants × devices) is over the limit of 10000" in err
    assert not (tmp_path / "R").exists()


def test_a_farm_device_name_and_serial_follow_the_name_rule(tmp_path):
    (tmp_path / "m.toml").write_text(
        'variants = ["fp32"]\nmodels = ["digits_cnn"]\n[[devices]]\nname = "'
        + "n" * 65
        + '"\nserial = "adb:../../../../etc/passwd"\n'
    )
    code, _, err = _run(["farm", str(tmp_path / "m.toml"), "--results", str(tmp_path / "R")])
    assert code == 1 and "devices[0].serial" in err and "devices[0].name" in err


def test_recipe_names_from_the_api_are_checked_like_run_ids():
    with pytest.raises(PocketbenchError, match=r"variant '\.\./x': it contains a path separator"):
        check_names(["digits_cnn"], [Recipe(name="../x", steps=())])
    with pytest.raises(PocketbenchError, match="over 1024 characters"):
        check_names(["m" * 2000 + ".py:f"], ["fp32"])


def test_any_value_an_error_quotes_is_cut():
    message = str(BadValue("--since", "9" * 10_000_000, "use a date"))
    assert len(message) < SHOWN_CHARS + 100 and "(10000000 characters)" in message


def test_the_plan_counts_earlier_runs_and_the_cache(tmp_path):
    """digits_cnn fp32/int8 were measured in the example run: their figures make the estimate."""
    results = tmp_path / "results"
    (results / "20261129-073224-3addd4").parent.mkdir()
    import shutil

    shutil.copytree(DATA / "example_run", results / "20261129-073224-3addd4")
    settings = ProtocolSettings(repetitions=3, iterations=50)
    known = estimate([("digits_cnn", "fp32", "local"), ("digits_cnn", "int8", "local")], settings, results, tmp_path)
    unknown = estimate([("nosuch", "fp32", "local")], settings, results, tmp_path)
    assert known.cells == 2 and known.known == 2 and known.cached == 0
    assert unknown.known == 0 and known.seconds > 0 and not known.big
    assert "plan: 2 cell(s), about" in known.describe()


def test_a_large_farm_from_a_terminal_waits_for_yes(tmp_path):
    """1 000 variants used to start with no estimate and no output for minutes."""
    variants = [f"prune{k}" for k in range(1, 80)] + [f"sparse{k}" for k in range(1, 100)]
    (tmp_path / "big.toml").write_text(
        f"variants = {variants!r}\n".replace("'", '"')
        + 'models = ["digits_cnn"]\n[[devices]]\nname = "here"\nserial = "local"\n'
    )
    parent, child = pty.openpty()
    proc = subprocess.run(
        [sys.executable, "-m", "pocketbench", "farm", "big.toml", "--results", "R"],
        stdin=child, stdout=subprocess.PIPE, stderr=child, cwd=tmp_path, timeout=120, check=False,
    )  # fmt: skip
    os.close(child)
    text = b""
    try:
        while chunk := os.read(parent, 65536):
            text += chunk
    except OSError:  # the terminal closed
        pass
    os.close(parent)
    err = text.decode(errors="replace")
    assert proc.returncode == 1, err
    assert "plan: 178 cell(s), about" in err and "add --yes to start it" in err, err
    assert not (tmp_path / "R").exists()
