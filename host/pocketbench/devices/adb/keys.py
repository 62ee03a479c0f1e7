"""This computer's adb key (~/.android/adbkey), the one the phone's "Allow USB debugging?" trusts."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import TYPE_CHECKING

from pocketbench.errors import PocketbenchError

if TYPE_CHECKING:  # adb-shell is imported where it is used (keeps `--help` fast)
    from adb_shell.auth.sign_cryptography import CryptographySigner


def default_key_path() -> Path:
    """$POCKETBENCH_ADB_KEY if set (tests, CI), else ~/.android/adbkey like adb itself."""
    override = os.environ.get("POCKETBENCH_ADB_KEY")
    return Path(override) if override else Path.home() / ".android" / "adbkey"


def ensure_key(path: Path) -> Path:
    """The private key at `path`, created (mode 0600, with `path`.pub) when missing.

    A key others can read lets them drive the phone as you: refuse it instead of using it."""
    if not path.exists():
        from adb_shell.auth.keygen import keygen

        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        old = os.umask(0o077)
        try:
            keygen(str(path))
        finally:
            os.umask(old)
        path.chmod(0o600)
        return path
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise PocketbenchError(f"adb key {path} is readable by group or others (mode {mode:o}): run `chmod 600 {path}`")
    return path


def load_signer(path: Path | None = None) -> CryptographySigner:
    """An adb-shell signer for the key at `path` (default: ~/.android/adbkey)."""
    from adb_shell.auth.keygen import write_public_keyfile
    from adb_shell.auth.sign_cryptography import CryptographySigner

    key = ensure_key(path or default_key_path())
    public = Path(f"{key}.pub")
    if not public.exists():  # adb itself only needs the private key; the handshake sends the public one
        write_public_keyfile(str(key), str(public))
    return CryptographySigner(str(key))
