"""`pocketbench emulator`: run an emulated phone in the foreground until Ctrl-C."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def emulator_command(
    port: Annotated[int, typer.Option(help="TCP port on 127.0.0.1 (not 5037 or 5555-5585).")],
    serial: Annotated[str, typer.Option(help="ro.serialno of the phone.")] = "",
    model: Annotated[str, typer.Option(help="Model name in the banner and getprop.")] = "Pixel 8",
    abi: Annotated[
        str,
        typer.Option(
            help="x86_64 or arm64-v8a (default: this computer's). arm64-v8a on x86_64 runs aarch64"
            " programs with qemu-user: timings are emulated, and rows say so."
        ),
    ] = "",
    auth: Annotated[
        bool,
        typer.Option(
            "--auth/--no-auth",
            help="Demand RSA auth (default), trusting only this computer's adb key"
            " ($POCKETBENCH_ADB_KEY or ~/.android/adbkey) and keys in ROOT/data/misc/adb/adb_keys."
            " --no-auth lets any local user in: for protocol tests only.",
        ),
    ] = True,
    accept_keys: Annotated[bool, typer.Option(help="Trust any key a host offers (as if 'Allow' were tapped).")] = False,
    root: Annotated[Path | None, typer.Option(help="Keep the phone's files here (default: a temp dir).")] = None,
    props: Annotated[
        Path | None,
        typer.Option(help="getprop overrides: key=value lines or `adb shell getprop` output (e.g. another ABI list)."),
    ] = None,
    clusters: Annotated[
        str,
        typer.Option(
            help="CPU clusters, slowest first, e.g. 4,3,1 (little, big, prime): the phone shows that many CPUs,"
            " which its taskset maps onto this computer's (default: this computer's CPUs)."
        ),
    ] = "",
    seccomp: Annotated[
        str,
        typer.Option(
            help="android-app: programs under /data run under Android's app seccomp filter (SIGSYS for"
            " syscalls outside its allowlist), as on a phone whose shell carries it. x86_64 phone only."
        ),
    ] = "",
) -> None:
    """Serve an emulated phone that adb and adb-shell can connect to.

    A test tool, not a sandbox: commands run as Android's shell user (uid 2000) with the
    host's folders read-only, but it shares this computer's kernel."""
    from pocketbench.devices.adb import local_phones
    from pocketbench.emulator.emulator import serve_forever, start_emulator, this_computers_key
    from pocketbench.emulator.persona import parse_layout, read_props
    from pocketbench.errors import PocketbenchError

    try:
        overrides = read_props(props) if props else None
        layout = parse_layout(clusters) if clusters else ()
        trusted = _trusted_keys(this_computers_key()) if auth else ()
        emu = start_emulator(
            port=port,
            serial=serial or None,
            model=model,
            root=root,
            require_auth=auth,
            accept_new_keys=accept_keys,
            abi=abi or None,
            props=overrides,
            clusters=layout,
            seccomp=seccomp,
            trusted_keys=trusted,
        )
    except PocketbenchError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    who = "auth: this computer's adb key" if auth else "NO AUTH: any local user gets a shell"
    announced: list[Path] = []

    def announce() -> None:
        announced.append(local_phones.register(emu.host, emu.port))  # `pocketbench devices` and `auto` find it
        typer.echo(
            f"emulated {model} ({emu.persona.abi}, {emu.serial}) listening on {emu.address};"
            f" files in {emu.root}; {who}; Ctrl-C stops it"
        )

    try:
        serve_forever(emu, announce)
    finally:
        for entry in announced:
            local_phones.unregister(entry)


def _trusted_keys(pocketbench_key: str) -> tuple[str, ...]:
    """pocketbench's key and, if it is another one, Debian adb's ~/.android/adbkey.pub."""
    adb_key = Path.home() / ".android" / "adbkey.pub"
    keys = [pocketbench_key]
    if adb_key.is_file() and adb_key.read_text().split()[:1] != pocketbench_key.split()[:1]:
        keys.append(adb_key.read_text())
    return tuple(keys)
