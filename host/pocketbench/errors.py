"""User-facing errors: one line that names the thing and the fix, never a traceback."""

# The most of a user's value an error quotes: a 10 MB name must not become a 10 MB "line".
SHOWN_CHARS = 200


def shown(value: object, limit: int = SHOWN_CHARS) -> str:
    """`value`'s repr for an error message, cut to `limit` characters with its full length named."""
    text = repr(value)
    if len(text) <= limit:
        return text
    length = f"{len(value)} characters" if isinstance(value, str | bytes) else f"{len(text)} characters as text"
    return f"{text[:limit]}… ({length})"


def first_line(exc: BaseException, limit: int = 300) -> str:
    """An exception as one line for a row or a message: its first line, or its type if it has none."""
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:limit]


class PocketbenchError(Exception):
    """An error whose message is shown to the user as is (one line: what, and what to do)."""


class DeviceError(PocketbenchError):
    """A device could not do what was asked; carries the command and what it printed."""

    def __init__(self, message: str, *, command: str = "", output: str = "", serial: str = ""):
        super().__init__(message)
        self.command = command
        self.output = output
        self.serial = serial


class BadValue(PocketbenchError):
    """A value given for `what` is wrong. The message names the thing (a library knows no command
    line); a caller that took the value from an option names that instead with `naming`."""

    def __init__(self, what: str, value: object, fix: str) -> None:
        self.what, self.value, self.fix = what, value, fix
        super().__init__(self.naming(what))

    def naming(self, name: str) -> str:
        """The message with the value named `name` (`--since`, a TOML key)."""
        return f"{name} {shown(self.value)}: {self.fix}"


class Interrupted(BaseException):
    """A signal (Ctrl-C, SIGTERM) stopped the command. A BaseException, so no `except Exception`
    in a cell, a worker or a library takes it for a failed cell; the CLI turns it into one line
    and the exit code 128 + the signal's number."""

    def __init__(self, signum: int, name: str) -> None:
        super().__init__(name)
        self.signum, self.name = signum, name


# A signal raised where Python swallows exceptions (a callback at fork, a __del__) would be lost:
# the handler also records it, and the points where work is saved raise it again.
_pending: Interrupted | None = None


def request_interrupt(stop: Interrupted | None) -> None:
    """Record `stop` for raise_if_interrupted (None: forget it, a new command starts)."""
    global _pending
    _pending = stop


def raise_if_interrupted() -> None:
    """Raise the recorded interrupt, if a signal asked for one (after the caller saved its work)."""
    if _pending is not None:
        raise _pending


def interruption(stop: BaseException) -> str:
    """`SIGINT` or `SIGTERM`: what stopped a run (a KeyboardInterrupt is Ctrl-C; SystemExit an exit)."""
    if isinstance(stop, Interrupted):
        return stop.name
    return "SIGINT" if isinstance(stop, KeyboardInterrupt) else type(stop).__name__
