"""The code examples of README.md and docs/*.md, as data: which block, on which line, how it runs.

docs/development.md ("Examples are tested") documents the comments that mark a block; the tests
in test_docs_examples.py run the blocks and test_docs_links.py checks the links of the same pages.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
RUNNABLE = {"bash": "shell", "sh": "shell", "python": "python"}
_FENCE = re.compile(r"^(?P<indent>\s*)(?P<fence>`{3,})(?P<info>[^`]*)$")
_MARK = re.compile(r"^\s*<!--\s*example:\s*(?P<what>.*?)\s*-->\s*$")
_MODE = re.compile(r"^(?:(?P<slow>slow)|skip:\s*(?P<why>\S.*)|file\s+(?P<file>[A-Za-z0-9_.-]+))$")


@dataclass(frozen=True)
class Example:
    page: Path
    line: int  # of the opening fence, 1-based
    language: str  # the fence's info string ("" when none)
    code: str
    mode: str  # "run", "slow", "skip" or "file"
    reason: str = ""  # why a block is skipped
    file: str = ""  # where a "file" block is written

    @property
    def where(self) -> str:
        return f"{_name(self.page)}:{self.line}"

    @property
    def kind(self) -> str | None:
        """The runner of a block: `shell` or `python`; None for text, TOML, …"""
        return RUNNABLE.get(self.language)


def _name(page: Path) -> str:
    """A page as the messages name it: relative to the repository when it is in it."""
    return str(page.relative_to(REPO)) if page.is_relative_to(REPO) else str(page)


class BadMark(ValueError):
    """A marker comment that says nothing known, or sits before no code block."""


def _mode(mark: str | None, where: str) -> tuple[str, str, str]:
    if mark is None:
        return "run", "", ""
    match = _MODE.match(mark)
    if match is None:
        raise BadMark(f"{where}: <!-- example: {mark} --> is not slow, skip: REASON or file NAME")
    if match["slow"]:
        return "slow", "", ""
    if match["why"]:
        return "skip", match["why"], ""
    return "file", "", match["file"]


def examples(page: Path) -> list[Example]:
    """Every fenced block of a page, with the mode its marker comment (the line before) gives."""
    lines = page.read_text().splitlines()
    found: list[Example] = []
    mark: tuple[int, str] | None = None  # a marker waiting for its block
    i = 0
    while i < len(lines):
        opening = _FENCE.match(lines[i])
        marked = _MARK.match(lines[i])
        if marked:
            if mark is not None:
                raise BadMark(f"{_name(page)}:{mark[0] + 1}: a marker with no code block after it")
            mark = (i, marked["what"])
        elif opening:
            indent, fence, start = opening["indent"], opening["fence"], i + 1
            language = opening["info"].strip().split()[0] if opening["info"].strip() else ""
            body, i = [], i + 1
            while i < len(lines) and lines[i].strip() != fence:
                body.append(lines[i][len(indent) :] if lines[i].startswith(indent) else lines[i])
                i += 1
            where = f"{_name(page)}:{start}"
            mode, reason, file = _mode(mark[1] if mark else None, where)
            if mark is not None and mode != "file" and language not in RUNNABLE:
                raise BadMark(f"{where}: {mode} marks a block that never runs ({language or 'no language'})")
            found.append(Example(page, start, language, "\n".join(body) + "\n", mode, reason, file))
            mark = None
        elif mark is not None and lines[i].strip():
            raise BadMark(f"{_name(page)}:{mark[0] + 1}: a marker must be the line right before its block")
        i += 1
    if mark is not None:
        raise BadMark(f"{_name(page)}:{mark[0] + 1}: a marker with no code block after it")
    return found
