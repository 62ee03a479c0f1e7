"""User-facing errors: one line that names the thing and the fix, never a traceback."""


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
        return f"{name} {self.value!r}: {self.fix}"
