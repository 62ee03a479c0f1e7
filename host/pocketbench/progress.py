"""Progress reporting for long stages (calibration, export, measurement) on stderr.

Stages take a `Reporter` so the library never prints by itself; the CLI hands in a rich one,
tests and scripts the silent default.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TypeVar

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.text import Text

T = TypeVar("T")
FAILED, WARNED = "✗", "!"
MARK_STYLES = {FAILED: "red", WARNED: "yellow"}


class Reporter:
    """Silent by default; `RichReporter` shows bars."""

    def track(self, items: Iterable[T], description: str, total: int | None = None) -> Iterator[T]:
        yield from items

    @contextmanager
    def status(self, description: str) -> Iterator[None]:
        yield

    def note(self, message: str, mark: str = "") -> None:
        """A one-line message for the user (warnings, skipped cells): plain text, never markup
        (error text quotes TOML like `[[devices]]`); `mark` is FAILED, WARNED or nothing."""

    @contextmanager
    def tally(self, description: str, total: int | None = None, done: int = 0) -> Iterator[Tally]:
        """A bar over units of work that finish elsewhere (a search's trials, from several
        workers): `advance()` counts one, `describe()` replaces the text (e.g. the best so far)."""
        yield Tally()


class Tally:
    """What `Reporter.tally` yields: silent here, a rich bar in RichReporter."""

    def advance(self) -> None:
        pass

    def describe(self, description: str) -> None:
        pass


class _RichTally(Tally):
    def __init__(self, progress: Progress, task: TaskID) -> None:
        self.progress, self.task = progress, task

    def advance(self) -> None:
        self.progress.advance(self.task)

    def describe(self, description: str) -> None:
        self.progress.update(self.task, description=escape(description))


class RichReporter(Reporter):
    """Bars and spinners on a rich console (stderr, so --json stdout stays clean)."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.progress = Progress(
            SpinnerColumn(),
            TextColumn("[progress.description]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        )

    def __enter__(self) -> RichReporter:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def track(self, items: Iterable[T], description: str, total: int | None = None) -> Iterator[T]:
        if total is None and hasattr(items, "__len__"):
            total = len(items)  # type: ignore[arg-type]
        task = self.progress.add_task(escape(description), total=total)
        try:
            for item in items:
                yield item
                self.progress.advance(task)
        finally:
            self.progress.remove_task(task)

    @contextmanager
    def status(self, description: str) -> Iterator[None]:
        task = self.progress.add_task(escape(description), total=None)
        try:
            yield
        finally:
            self.progress.remove_task(task)

    @contextmanager
    def tally(self, description: str, total: int | None = None, done: int = 0) -> Iterator[Tally]:
        task = self.progress.add_task(escape(description), total=total, completed=done)
        try:
            yield _RichTally(self.progress, task)
        finally:
            self.progress.remove_task(task)

    def note(self, message: str, mark: str = "") -> None:
        style = MARK_STYLES.get(mark, "")
        self.console.print(
            Text.assemble((f"{mark} " if mark else "", style), (message, style if mark == FAILED else ""))
        )


_CURRENT: ContextVar[Reporter | None] = ContextVar("pocketbench_reporter", default=None)


def current_reporter() -> Reporter:
    """The reporter of the stage running now: model factories show their training progress
    through it without taking a reporter argument (the factory signature stays `() -> bundle`)."""
    return _CURRENT.get() or Reporter()


@contextmanager
def reporting_to(reporter: Reporter) -> Iterator[None]:
    """Make `reporter` the current one for the code run inside (e.g. a model factory)."""
    token = _CURRENT.set(reporter)
    try:
        yield
    finally:
        _CURRENT.reset(token)
