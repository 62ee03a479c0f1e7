"""ADB RSA authentication, device side: tokens, signature checks, the adb_keys store.

A host signs our random 20-byte token with PKCS#1 v1.5 and a SHA-1 DigestInfo prefix over
the raw token (not hashed again), hence `Prehashed(SHA1())` when verifying.
"""

from __future__ import annotations

import base64
import binascii
import os
import struct
import threading
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa, utils

from pocketbench.emulator.wire import TOKEN_SIZE

# Android's public key blob: modulus size in 32-bit words, n0inv, n (LE), rr (LE), exponent.
_KEY_BLOB = struct.Struct("<II256s256sI")


class KeyFormatError(ValueError):
    """Text that is not an adb public key (`<base64 blob> [comment]`)."""


def new_token() -> bytes:
    return os.urandom(TOKEN_SIZE)


def decode_public_key(text: str | bytes) -> rsa.RSAPublicKey:
    """Parse one adb public key line (as in adbkey.pub or adb_keys) into an RSA key."""
    if isinstance(text, bytes):
        text = text.decode("ascii", "replace")
    fields = text.strip().strip("\0").split()
    if not fields:
        raise KeyFormatError("empty adb public key")
    try:
        blob = base64.b64decode(fields[0], validate=True)
    except binascii.Error as exc:
        raise KeyFormatError(f"adb public key is not base64: {exc}") from exc
    if len(blob) != _KEY_BLOB.size:
        raise KeyFormatError(f"adb public key blob is {len(blob)} bytes, expected {_KEY_BLOB.size}")
    words, _n0inv, modulus, _rr, exponent = _KEY_BLOB.unpack(blob)
    if words != 64:
        raise KeyFormatError(f"adb public key has {words} modulus words, expected 64 (RSA-2048)")
    n = int.from_bytes(modulus, "little")
    return rsa.RSAPublicNumbers(exponent, n).public_key()


def signature_matches(key: rsa.RSAPublicKey, token: bytes, signature: bytes) -> bool:
    try:
        key.verify(signature, token, padding.PKCS1v15(), utils.Prehashed(hashes.SHA1()))
    except (InvalidSignature, ValueError):
        return False
    return True


class KeyStore:
    """Authorized host keys, persisted like a phone's /data/misc/adb/adb_keys (one per line)."""

    def __init__(self, path: Path):
        self.path = path
        self._lock = threading.Lock()

    def lines(self) -> list[str]:
        try:
            return [ln for ln in self.path.read_text().splitlines() if ln.strip()]
        except FileNotFoundError:
            return []

    def keys(self) -> list[rsa.RSAPublicKey]:
        keys = []
        for line in self.lines():
            try:
                keys.append(decode_public_key(line))
            except KeyFormatError:
                continue  # a phone skips malformed lines too
        return keys

    def add(self, public_key_line: str | bytes) -> None:
        """Authorize a key (validated first), as tapping "Allow" on the phone does."""
        if isinstance(public_key_line, bytes):
            public_key_line = public_key_line.decode("ascii", "replace")
        line = public_key_line.strip().strip("\0").strip()
        decode_public_key(line)
        with self._lock:
            if line in self.lines():
                return
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a") as f:
                f.write(line + "\n")

    def verify(self, token: bytes, signature: bytes) -> bool:
        return any(signature_matches(key, token, signature) for key in self.keys())
