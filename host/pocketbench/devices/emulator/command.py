"""`pocketbench emulator`: run an emulated phone in the foreground until Ctrl-C."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def emulator_command(
    port: Annotated[int, typer.Option(help="TCP port on 127.0.0.1 (not 5037 or 5555-5585).")],
    serial: Annotated[str, typer.Option(help="ro.serialno of the phone.")] = "",
    model: Annotated[str, typer.Option(help="Model name in the banner and getprop.")] = "Pixel 8",
    require_auth: Annotated[
        bool, typer.Option(help="Demand RSA auth; keys live in ROOT/data/misc/adb/adb_keys.")
    ] = False,
    accept_keys: Annotated[bool, typer.Option(help="With --require-auth: trust any key a host offers.")] = False,
    root: Annotated[Path | None, typer.Option(help="Keep the phone's files here (default: a temp dir).")] = None,
) -> None:
    """Serve an emulated phone that adb and adb-shell can connect to."""
    from pocketbench.devices.emulator.emulator import serve_forever, start_emulator
    from pocketbench.errors import PocketbenchError

    try:
        emu = start_emulator(
            port=port,
            serial=serial or None,
            model=model,
            root=root,
            require_auth=require_auth,
            accept_new_keys=accept_keys,
        )
    except PocketbenchError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(
        f"emulated {model} ({emu.serial}) listening on {emu.address}; files in {emu.root}; Ctrl-C stops it",
        err=False,
    )
    serve_forever(emu)
