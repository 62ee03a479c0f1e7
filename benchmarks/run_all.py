"""Run every benchmark in this folder (each writes its own section of RESULTS.md).

`just benchmark` runs them all; `just benchmark foundation` runs one by name.
"""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

HERE = Path(__file__).parent


def main(names: list[str]) -> None:
    scripts = sorted(p for p in HERE.glob("*.py") if not p.name.startswith("_") and p.name != "run_all.py")
    chosen = [p for p in scripts if not names or p.stem in names]
    unknown = set(names) - {p.stem for p in scripts}
    if unknown:
        sys.exit(f"unknown benchmark(s) {sorted(unknown)}: choose from {[p.stem for p in scripts]}")
    sys.path.insert(0, str(HERE))
    for script in chosen:
        print(f"== {script.stem}", flush=True)
        runpy.run_path(str(script), run_name="__main__")


if __name__ == "__main__":
    main(sys.argv[1:])
