"""A runner bundle's manifest: what files it holds, their hashes, and the bundle's identity.

A bundle is one folder (device_runner/build/android-<arch>/) that runs pocket_runner on a phone
without the NDK: the glibc-linked runner, its libraries, glibc's loader and a launcher. Its
`manifest.json` lists every other file with its sha256; the sha256 of the manifest itself names
the bundle, so the folder on the phone is content-addressed like every other pushed file.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pocketbench.errors import PocketbenchError

MANIFEST = "manifest.json"
LAUNCHER = "launch.sh"
FORMAT = 1
ABI_DIRS = {"arm64-v8a": "android-arm64", "x86_64": "android-x86_64"}


@dataclass(frozen=True)
class BundleFile:
    name: str
    sha256: str
    size: int
    executable: bool


@dataclass(frozen=True)
class Bundle:
    """A built bundle on this computer, as its manifest describes it."""

    folder: Path
    bundle_id: str  # sha256 of manifest.json
    abi: str
    files: tuple[BundleFile, ...]  # manifest.json not included
    versions: dict[str, str]
    total_bytes: int  # every file, the manifest included

    @property
    def launcher(self) -> str:
        return LAUNCHER


def manifest_text(abi: str, files: list[BundleFile], versions: dict[str, str], licenses: dict[str, list[str]]) -> str:
    """The manifest's exact bytes (sorted, no timestamps): the same bundle always gets the same id.

    `total_bytes` counts the listed files; the manifest's own size is added by `read_bundle`."""
    body: dict[str, Any] = {
        "format": FORMAT,
        "abi": abi,
        "launcher": LAUNCHER,
        "versions": versions,
        "licenses": licenses,  # licence file → the shipped files it covers
        "files": {f.name: {"sha256": f.sha256, "size": f.size, "executable": f.executable} for f in files},
        "total_bytes": sum(f.size for f in files),
    }
    return json.dumps(body, indent=2, sort_keys=True) + "\n"


def read_bundle(folder: Path) -> Bundle:
    """The bundle in `folder` from its manifest (files are not hashed here: see `verify`)."""
    path = folder / MANIFEST
    try:
        raw = path.read_bytes()
        body = json.loads(raw)
        files = tuple(
            BundleFile(name, entry["sha256"], int(entry["size"]), bool(entry["executable"]))
            for name, entry in sorted(body["files"].items())
        )
        abi, versions = str(body["abi"]), dict(body["versions"])
    except FileNotFoundError:
        raise PocketbenchError(f"{path} is missing: rebuild the bundle with `just build-runner-android`") from None
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise PocketbenchError(
            f"{path} is not a bundle manifest ({exc}): rebuild with `just build-runner-android`"
        ) from None
    if body.get("format") != FORMAT:
        raise PocketbenchError(f"{path} has format {body.get('format')!r}, expected {FORMAT}: rebuild the bundle")
    for f in files:  # names go into phone paths: only plain names, never a path
        if "/" in f.name or f.name in ("", ".", "..") or f.name.startswith("."):
            raise PocketbenchError(f"{path} lists the file name {f.name!r}, which is not allowed: rebuild the bundle")
    total = sum(f.size for f in files) + len(raw)
    return Bundle(folder, hashlib.sha256(raw).hexdigest(), abi, files, versions, total)


def verify(bundle: Bundle) -> list[str]:
    """Problems with the bundle's files on this computer: each names the file and what is wrong."""

    problems = []
    for f in bundle.files:
        path = bundle.folder / f.name
        if not path.is_file():
            problems.append(f"{f.name} is missing")
        elif sha256_file(path) != f.sha256:
            problems.append(f"{f.name} does not match its sha256 in the manifest")
    return problems


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()
