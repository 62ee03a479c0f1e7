"""Write one benchmark's section of benchmarks/RESULTS.md, stamped with the machine and date.

Each benchmark owns the text between `<!-- NAME:start -->` and `<!-- NAME:end -->`; re-running a
benchmark replaces only its own section.
"""

from __future__ import annotations

import os
import platform
import re
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
from pocketbench.devices.local import LocalDevice
from pocketbench.results.store import read_run, run_notes

RESULTS = Path(__file__).with_name("RESULTS.md")
HEADER = "# Benchmark results\n\nWritten by `just benchmark`; each section says when and where it was measured.\n"


def machine() -> str:
    """CPU model and int8 features, core count and OS, as one line."""
    info = LocalDevice().info()
    features = info.extra.get("cpu_features") or "none"
    return f"{info.cpu} ({features}), {os.cpu_count()} cores, {info.os}, Python {platform.python_version()}"


def saved_run(args: list[str]) -> tuple[str, pd.DataFrame, list[str]] | None:
    """`script.py RUN_ID`: that run in results/ (finished, or the cells an interrupted one saved)
    with what to say about it, so a section can be written again without measuring anything."""
    for arg in args:
        folder = Path("results", arg)
        if (folder / "manifest.json").is_file():
            return folder.name, read_run(folder), run_notes(folder)
    return None


def load_note(before: float, after: float) -> str:
    """The 1-minute load average around a run, as one sentence: this machine is shared, so latencies
    measured while others work are stretched, and a reader must see that next to them."""
    cores = os.cpu_count() or 1
    busy = max(before, after) > cores / 2
    allowed = sorted(os.sched_getaffinity(0))
    pinned = (
        f" This benchmark ran pinned to CPU {', '.join(map(str, allowed))} of {cores} (taskset), the other "
        "core(s) running other work; torch trained with one thread there."
        if len(allowed) < cores
        else ""
    )
    return (
        f"Shared machine: 1-minute load average {before:.1f} at the start, {after:.1f} at the end on {cores} cores "
        "(other engineers' jobs and this benchmark's own processes)"
        + ("; latencies are not quiet-machine figures, compare ratios within the run." if busy else ".")
        + pinned
    )


def write_section(name: str, title: str, body: str) -> None:
    stamp = f"_Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {machine()}._"
    section = f"<!-- {name}:start -->\n## {title}\n\n{stamp}\n\n{body.strip()}\n<!-- {name}:end -->"
    text = RESULTS.read_text() if RESULTS.exists() else HEADER
    pattern = re.compile(rf"<!-- {re.escape(name)}:start -->.*?<!-- {re.escape(name)}:end -->", re.S)
    text = pattern.sub(lambda _: section, text) if pattern.search(text) else text.rstrip() + "\n\n" + section + "\n"
    RESULTS.write_text(text)
