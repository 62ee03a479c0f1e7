"""Every shell and Python example in README.md and docs/*.md runs as written.

Each page's blocks run in order in a fresh folder, as a reader would type them: shell blocks with
`bash -euo pipefail` and `.venv/bin` first on the PATH, Python blocks in one namespace per page.
A page with a block marked `slow` is a slow test; blocks marked `skip` are reported with their
reason (docs/development.md, "Examples are tested").
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.docs_examples import PAGES, REPO, BadMark, Example, examples

BIN = Path(sys.executable).parent
SHELL_TIMEOUT_S = 1800


def _page_param(page: Path) -> object:
    blocks = examples(page)
    marks = [pytest.mark.slow] if any(e.mode == "slow" for e in blocks) else []
    return pytest.param(page, marks=marks, id=str(page.relative_to(REPO)))


RUN_PAGES = [_page_param(p) for p in PAGES if any(e.mode in ("run", "slow", "file") for e in examples(p))]
SKIPPED = [e for p in PAGES for e in examples(p) if e.mode == "skip"]


def _run_shell(example: Example, folder: Path) -> None:
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", "COLUMNS": "120"}
    env.pop("POCKETBENCH_RESULTS", None)  # results/ of the page's own folder, as for a reader
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", example.code],
        cwd=folder, env=env, capture_output=True, text=True, timeout=SHELL_TIMEOUT_S, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert result.returncode == 0, (
        f"{example.where} exited {result.returncode}\n{example.code}\n"
        f"--- stdout (end) ---\n{result.stdout[-3000:]}\n--- stderr (end) ---\n{result.stderr[-3000:]}"
    )


@pytest.mark.parametrize("page", RUN_PAGES)
def test_the_examples_of_a_page_run(page: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("POCKETBENCH_RESULTS", raising=False)
    namespace: dict[str, object] = {"__name__": "__docs_example__"}
    for example in examples(page):
        if example.mode == "file":
            (tmp_path / example.file).write_text(example.code)
        elif example.mode in ("run", "slow") and example.kind == "shell":
            _run_shell(example, tmp_path)
        elif example.mode in ("run", "slow") and example.kind == "python":
            exec(compile(example.code, example.where, "exec"), namespace)  # the docs' own code, as a reader runs it


@pytest.mark.parametrize("example", SKIPPED, ids=[e.where for e in SKIPPED])
def test_an_example_marked_skip_says_why(example: Example) -> None:
    pytest.skip(f"{example.where}: {example.reason}")


def test_every_marker_is_known_and_every_runnable_block_is_collected() -> None:
    counted = {page: examples(page) for page in PAGES}  # raises BadMark on any bad marker
    runnable = [e for blocks in counted.values() for e in blocks if e.kind]
    assert runnable, "no shell or Python example found in the docs"
    assert {e.mode for e in runnable} <= {"run", "slow", "skip", "file"}


def test_a_bad_marker_is_named_with_its_line(tmp_path: Path) -> None:
    """The parser can fail: an unknown marker, one far from its block, one on a text block."""
    cases = {
        "<!-- example: later -->\n```bash\ntrue\n```\n": "is not slow, skip: REASON or file NAME",
        "<!-- example: slow -->\n\nsome prose\n```bash\ntrue\n```\n": "right before its block",
        "<!-- example: slow -->\n```text\nplain\n```\n": "marks a block that never runs",
    }
    for number, (text, message) in enumerate(cases.items()):
        page = tmp_path / f"page{number}.md"
        page.write_text(text)
        with pytest.raises(BadMark, match=message):
            examples(page)
