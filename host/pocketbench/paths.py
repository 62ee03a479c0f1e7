"""Where pocketbench keeps and finds things on the host: the artifact and trained-weights cache,
and the native runner's build (the run results folder is the caller's choice: the CLI's `--results`)."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """Artifact and trained-weights cache (POCKETBENCH_CACHE, else ~/.cache/pocketbench)."""
    root = os.environ.get("POCKETBENCH_CACHE") or Path.home() / ".cache" / "pocketbench"
    path = Path(root)
    path.mkdir(parents=True, exist_ok=True)
    return path


RUNNER_ENV = "POCKETBENCH_RUNNER"  # the host runner to use, wherever it was built


def checkout_root() -> Path | None:
    """The pocketbench checkout in use: the one this package is installed from (an editable
    install), else the current folder's when it is one (a wheel run inside a checkout); None
    elsewhere. A checkout is a folder with the justfile and `device_runner/` side by side."""
    here = Path(__file__).resolve().parent
    for folder in (*here.parents, Path.cwd()):
        if (folder / "justfile").is_file() and (folder / "device_runner" / "CMakeLists.txt").is_file():
            return folder
    return None


def runner_build_dir() -> Path:
    """Where `just build-runner` and the Android recipes write: `device_runner/build` of the
    checkout (of the current folder when none is found, so messages still name a real place)."""
    return (checkout_root() or Path.cwd()) / "device_runner" / "build"


def host_runner() -> Path | None:
    """The host's native runner: $POCKETBENCH_RUNNER if set (an error naming the fix when it is
    not an executable file), else `just build-runner`'s output if built, else None."""
    from pocketbench.errors import PocketbenchError

    override = os.environ.get(RUNNER_ENV)
    if override:
        path = Path(override)
        if not (path.is_file() and os.access(path, os.X_OK)):
            raise PocketbenchError(
                f"{RUNNER_ENV}={override} is not an executable runner: build one with `just build-runner` or unset it"
            )
        return path
    path = runner_build_dir() / "host" / "pocket_runner"
    return path if path.is_file() and os.access(path, os.X_OK) else None


# A TOML file a user hands in (a sweep, a farm matrix) is a page of settings: a few MB is
# already far beyond any real one, and reading more only delays the error.
TOML_MAX_BYTES = 4 * 1024 * 1024


def read_bounded(path: Path, limit: int, what: str) -> str:
    """`path`'s text, refusing a file over `limit` bytes without reading all of it (a named
    pipe or /dev/zero included). FileNotFoundError and other OSErrors are the caller's to word."""
    from pocketbench.errors import PocketbenchError

    with path.open("rb") as handle:
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise PocketbenchError(
            f"{what} {path}: larger than the limit of {limit // (1024 * 1024)} MB; is it the right file?"
        )
    return data.decode("utf-8", errors="replace")
