"""Issue 14: generated strings thrown at every CLI option that takes a name, a path or a spec.
Whatever the value, the answer is a result or one line `error: …` (never a traceback, never the
"unexpected" exit code 2), and no file appears outside the results folder given.

Fast by construction: each command gets one deliberately bad option that is checked after the
one under test (an unknown device, a matrix naming an unknown model), so values are validated
and nothing is exported or measured. Runs in-process through `cli.main`.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from pocketbench import cli

from tests.conftest import DATA

pytestmark = pytest.mark.slow  # hundreds of generated CLI invocations (hypothesis)

# What a hostile or careless user types, alone or glued to generated text.
NASTY = [
    "", ".", "..", "../x", "../../../../etc/passwd", "/tmp/pocketbench-fuzz-abs", "a/b", "~", "-", "--help",
    "x:y", ":", "::", "../x:y", "os:", "a b:c", "x.py:f", "$(touch pwned)", "`id`", ";rm -rf x", "%s%n",
    "{0}", "[red]x[/]", "[[devices]]", "\\", "latest", "first", "fp32,", ",,", "int9", "prune50+",
    "tcp:", "adb:", "usb:", "é", "\u202e", "\n", "x" * 300, "7d", "99999999999999999999w", "2026-13-45",
    # Oversized: over every name limit, and far over what an error may quote.
    "v" * 65, "a" * 100_000, "adb:" + "s" * 100_000, "9" * 5_000, "prune50+" * 10_000,
]  # fmt: skip
TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=60)
VALUES = st.one_of(st.sampled_from(NASTY), TEXT, st.builds(lambda a, b: a + b, st.sampled_from(NASTY), TEXT))
RUN_ID = "20261129-073224-3addd4"
FARM = """
name = "fuzz"
variants = ["fp32"]
models = ["nosuch_model"]

[[devices]]
name = "here"
serial = "local"
"""


def _not_a_device(value: str) -> bool:
    """Device values that would start real work (or probe a network) are tested elsewhere."""
    return value.strip() not in ("local", "auto") and not value.startswith(("tcp:", "adb:", "usb:"))


# Each case: (argv builder from the generated value, exit codes a correct CLI may give).
CASES = {
    "bench --model": (lambda v, r: ["bench", f"--model={v}", "--variants=fp32", "--device=nowhere", f"--results={r}"]),
    "bench --variants": (lambda v, r: ["bench", "--model=digits_cnn", f"--variants={v}", "--device=nowhere",
                                       f"--results={r}"]),
    "bench --device": (lambda v, r: ["bench", "--model=digits_cnn", "--variants=fp32", f"--device={v}",
                                     f"--results={r}"]),
    "bench --run-id": (lambda v, r: ["bench", "--model=digits_cnn", "--variants=fp32", "--device=nowhere",
                                     f"--run-id={v}", f"--results={r}"]),
    "bench --sweep": (lambda v, r: ["bench", "--model=digits_cnn", f"--sweep={v}", "--device=nowhere",
                                    f"--results={r}"]),
    "bench --results": (lambda v, r: ["bench", "--model=digits_cnn", "--variants=fp32", "--device=nowhere",
                                      f"--results={v}"]),
    "report RUN": (lambda v, r: ["report", f"--results={r}", "--", v]),
    "report --compare": (lambda v, r: ["report", RUN_ID, f"--compare={v}", f"--results={r}"]),
    "report --format": (lambda v, r: ["report", RUN_ID, f"--format={v}", f"--results={r}"]),
    "report --results": (lambda v, r: ["report", "latest", f"--results={v}"]),
    "history --model": (lambda v, r: ["history", f"--model={v}", f"--results={r}"]),
    "history --variant": (lambda v, r: ["history", f"--variant={v}", f"--results={r}"]),
    "history --device": (lambda v, r: ["history", f"--device={v}", f"--results={r}"]),
    "history --since": (lambda v, r: ["history", f"--since={v}", f"--results={r}"]),
    "history --format": (lambda v, r: ["history", f"--format={v}", f"--results={r}"]),
    "history --results": (lambda v, r: ["history", f"--results={v}"]),
    "farm MATRIX": (lambda v, r: ["farm", f"--results={r}", "--", v]),
    "farm --run-id": (lambda v, r: ["farm", "farm.toml", f"--run-id={v}", f"--results={r}"]),
    "emulator --port": (lambda v, r: ["emulator", f"--port={v}"]),
}  # fmt: skip


def _tree(folder: Path) -> set[Path]:
    return set(folder.rglob("*"))


def _run(argv: list[str]) -> tuple[int, str, str]:
    # A real stdout has a binary buffer (history --format parquet writes bytes to it).
    out, err = io.TextIOWrapper(io.BytesIO(), encoding="utf-8", errors="replace"), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            cli.main(argv)
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
    out.flush()
    return code, out.buffer.getvalue().decode("utf-8", errors="replace"), err.getvalue()


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory):
    """Each example works in a fresh folder under this one: a results folder holding a real
    run, and a farm matrix naming an unknown model."""
    return tmp_path_factory.mktemp("fuzz")


@pytest.mark.parametrize("case", sorted(CASES))
def test_generated_values_get_one_line_and_stay_inside_the_results_folder(case, sandbox, monkeypatch):
    build = CASES[case]
    cli._debug = False
    monkeypatch.delenv("POCKETBENCH_RESULTS", raising=False)

    @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True, database=None)
    @given(value=VALUES.filter(_not_a_device) if case == "bench --device" else VALUES)
    @_every(NASTY if case != "bench --device" else [v for v in NASTY if _not_a_device(v)])
    def check(value: str) -> None:
        work = Path(tempfile.mkdtemp(dir=sandbox))
        cwd, results = work / "cwd", work / "cwd" / "results"
        shutil.copytree(DATA / "example_run", results / RUN_ID)
        (cwd / "farm.toml").write_text(FARM)
        absolute = Path(value) if value.startswith("/") and "\n" not in value else None
        existed = absolute is not None and _exists(absolute)
        before = _tree(work)
        old = Path.cwd()
        os.chdir(cwd)
        try:
            code, out, err = _run(build(value, "results"))
        finally:
            os.chdir(old)
        assert "Traceback" not in out + err, err
        assert code in (0, 1), f"{case} {value!r}: exit {code}: {err}"
        if code:
            lines = [line for line in err.splitlines() if line.strip() and not line.startswith("plan:")]
            assert len(lines) == 1 and lines[0].startswith("error: "), f"{case} {value[:300]!r}: {err[:3000]}"
            assert len(lines[0]) <= 2_200, f"{case}: an error line of {len(lines[0])} characters"
        outside = [p for p in _tree(work) - before if not p.is_relative_to(results)]
        assert not outside, f"{case} {value!r} created {outside}"
        if absolute is not None and not existed:
            assert not _exists(absolute), f"{case} {value!r} created {absolute}"
        shutil.rmtree(work)

    check()


def _every(values: list[str]):
    """Each hand-written value as an explicit example, besides the generated ones."""

    def apply(test):
        for value in reversed(values):
            test = example(value=value)(test)
        return test

    return apply


def _exists(path: Path) -> bool:
    try:
        return path.exists()
    except (OSError, ValueError):
        return False


# Commands a SIGINT may land in at any moment: reading a run, a farm starting, a bench refusing.
SIGINT_COMMANDS = [
    ["report", RUN_ID, "--results", "results"],
    ["history", "--results", "results"],
    ["farm", "farm.toml", "--results", "results"],
    ["bench", "--model", "digits_cnn", "--variants", "fp32", "--device", "nowhere", "--results", "results"],
]


@pytest.mark.parametrize("seed", range(8))
def test_sigint_at_a_random_moment_is_one_line_or_a_result(seed, tmp_path):
    """Once the command runs, Ctrl-C is either too late (a result) or one `interrupted:` line and
    exit 130 — never a traceback or typer's bare blank line."""
    import random
    import signal
    import subprocess
    import sys
    import time

    rng = random.Random(seed)
    shutil.copytree(DATA / "example_run", tmp_path / "results" / RUN_ID)
    (tmp_path / "farm.toml").write_text(FARM)
    command = SIGINT_COMMANDS[seed % len(SIGINT_COMMANDS)]
    # The entry point's first step, then the CLI's import, then a line: from here on every moment is
    # covered by a handler (the entry's until main installs its own), whatever the machine's load.
    start = (
        "from pocketbench.__main__ import main, stop_at_once_on_signals; stop_at_once_on_signals();"
        " import pocketbench.cli; print(flush=True); main()"
    )
    proc = subprocess.Popen([sys.executable, "-c", start, *command], cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)  # fmt: skip
    assert proc.stdout is not None and proc.stdout.readline() == b"\n"  # the CLI is imported: main runs next
    time.sleep(rng.uniform(0.0, 1.5))
    proc.send_signal(signal.SIGINT)
    _, raw = proc.communicate(timeout=300)
    err = raw.decode(errors="replace")
    assert "Traceback" not in err, err
    assert proc.returncode in (0, 1, 130), (command, proc.returncode, err)
    if proc.returncode == 130:
        assert [line for line in err.splitlines() if line.strip()][-1].startswith("interrupted: "), err
