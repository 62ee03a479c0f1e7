"""Read results written by older pocketbench versions: each schema version upgrades one step.

Every row carries `schema_version`; a file is migrated step by step (1 → 2 → …) up to the
version this pocketbench writes, so history can mix runs of any age in one DataFrame.
Add a step here whenever a column is renamed, re-unitted or given a new meaning.
"""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd

from pocketbench.errors import PocketbenchError

SCHEMA_VERSION = 2


def _v1_to_v2(frame: pd.DataFrame) -> pd.DataFrame:
    """v1 (the first release): raw samples were `samples_ms`; no attempt number or device state.

    v2 names the samples `latency_samples_ms` (beside the latency summary columns), numbers
    each try of a cell (`attempt`, 1-based; v1 never retried) and adds `device_state_json`.
    """
    frame = frame.rename(columns={"samples_ms": "latency_samples_ms"})
    if "attempt" not in frame:
        frame["attempt"] = 1
    if "device_state_json" not in frame:
        frame["device_state_json"] = None
    return frame


MIGRATIONS: dict[int, Callable[[pd.DataFrame], pd.DataFrame]] = {1: _v1_to_v2}


def file_version(frame: pd.DataFrame) -> int:
    """The schema version of one stored file (all its rows share one); v1 files always carry it."""
    if "schema_version" not in frame or frame.empty:
        return SCHEMA_VERSION if "latency_samples_ms" in frame else 1
    versions = set(frame["schema_version"].dropna().astype(int))
    if len(versions) > 1:
        raise PocketbenchError(f"one results file mixes schema versions {sorted(versions)}: it was edited by hand")
    return versions.pop() if versions else 1


def migrate(frame: pd.DataFrame, source: str) -> pd.DataFrame:
    """Upgrade a frame read from `source` (named in errors) to SCHEMA_VERSION."""
    version = file_version(frame)
    if version > SCHEMA_VERSION:
        raise PocketbenchError(
            f"{source} has results schema v{version}, newer than this pocketbench (v{SCHEMA_VERSION}): "
            "upgrade pocketbench to read it"
        )
    while version < SCHEMA_VERSION:
        frame = MIGRATIONS[version](frame)
        version += 1
    frame["schema_version"] = SCHEMA_VERSION
    return frame
