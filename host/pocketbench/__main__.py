"""`pocketbench` and `python -m pocketbench`: Ctrl-C is one line and exit 130 from the first line
of pocketbench's code on. The handler goes in before the CLI's imports (a signal there would
otherwise end in a KeyboardInterrupt traceback); `cli.main` replaces it once it runs."""

import os
import signal


def _while_starting(signum: int, _frame: object) -> None:
    """Nothing has been done yet: say so and exit at once (no traceback from a half-done import)."""
    os.write(2, b"interrupted: nothing was measured\n")
    os._exit(128 + signum)


def stop_at_once_on_signals() -> None:
    """Until the CLI installs its own: Ctrl-C or SIGTERM end the process with one line."""
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, _while_starting)


def main() -> None:
    stop_at_once_on_signals()
    from pocketbench.cli import main as cli_main

    cli_main()


if __name__ == "__main__":
    main()
