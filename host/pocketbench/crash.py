"""An unexpected exception (a bug, or damage pocketbench did not foresee) as one line for the
user and a full traceback in a file: inside the run folder when a run was under way (it travels
with the results), else under the cache directory (`logs/`).

Exit codes, one meaning each, so a script or a nightly job can act on them (docs/getting-started.md, "Exit codes").
"""

from __future__ import annotations

import os
import traceback
from datetime import UTC, datetime
from pathlib import Path

from pocketbench.errors import first_line
from pocketbench.paths import cache_dir

EXIT_OK = 0
EXIT_ERROR = 1  # bad input or a failure pocketbench explains in one line; nothing (more) was measured
EXIT_INTERNAL = 2  # an unexpected error: the traceback is in a log file
EXIT_REGRESSION = 3  # farm: a significant regression against earlier nights
EXIT_INCOMPLETE = 4  # bench or farm: nothing measured, or a cell failed, was not run or is partial
EXIT_INTERRUPTED = 130  # Ctrl-C (SIGINT); SIGTERM gives 143: 128 + the signal, as shells do
EXIT_CODES_HELP = (
    "Exit codes: 0 all measured; 1 bad input or a clear error; 2 unexpected error (traceback in a log);"
    " 3 regression (farm); 4 no or partial data: a cell failed, was not run or is partial;"
    " 130 interrupted by Ctrl-C (143: SIGTERM), what was measured is kept."
)

# The folder of the run being written, if any (set by the bench and farm commands); used once it
# exists (the run has claimed it), else the log goes to the cache.
run_folder: Path | None = None
# How to carry on after an interrupt (farm: the same matrix with --run-id), set with run_folder.
resume_hint: str | None = None


def where(exc: BaseException) -> str:
    """`file.py:line in function` of the innermost pocketbench frame (else the innermost frame)."""
    frames = traceback.extract_tb(exc.__traceback__)
    if not frames:
        return "unknown place"
    ours = [f for f in frames if f"{os.sep}pocketbench{os.sep}" in f.filename]
    frame = (ours or frames)[-1]
    return f"{Path(frame.filename).name}:{frame.lineno} in {frame.name}"


def write_log(exc: BaseException, command: str) -> Path:
    """The traceback of `exc` in a new file; the run folder when there is one, else the cache's logs/."""
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    text = f"pocketbench {command}: unexpected error at {stamp} UTC\n\n" + "".join(traceback.format_exception(exc))
    for folder in (run_folder, cache_dir() / "logs"):
        if folder is None or (folder is run_folder and not folder.is_dir()):
            continue
        try:
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / f"crash-{stamp}-{os.getpid()}.log"
            path.write_text(text, encoding="utf-8", errors="replace")
            return path
        except OSError:
            continue  # the run folder's disk is full or gone: try the cache
    raise OSError("no writable place for the crash log")


def crash_line(exc: BaseException, command: str, log: Path | None) -> str:
    """One line: what failed, where, and where the traceback went."""
    what = f"pocketbench {command} failed unexpectedly: {type(exc).__name__} at {where(exc)}: {first_line(exc)}"
    if log is None:
        return f"{what} (the traceback could not be saved; rerun with `pocketbench --debug {command} …`)"
    return f"{what}; full traceback in {log} (`pocketbench --debug {command} …` prints it)"
