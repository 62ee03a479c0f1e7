"""Read results written by older pocketbench versions: each schema version upgrades one step.

Every row carries `schema_version`; a file is migrated step by step (1 → 2 → …) up to the
version this pocketbench writes, so history can mix runs of any age in one DataFrame. Each step
works on a whole frame, so history upgrades all the files of one version at once (`upgrade`).
Add a step here whenever a column is renamed, re-unitted or given a new meaning; list a rename
in RENAMED too, so a reader asking for the new name reads the old one from older files, and a
column a step computes in DERIVED with the stored columns it is computed from.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import TYPE_CHECKING

from pocketbench.errors import PocketbenchError

if TYPE_CHECKING:  # history exports read and write through pyarrow alone: neither is imported for them
    import pandas as pd
    import pyarrow as pa

SCHEMA_VERSION = 3
# Columns each step renames, old name → new name.
RENAMED: dict[int, dict[str, str]] = {1: {"samples_ms": "latency_samples_ms"}}
# Columns each step computes, new name → the columns (as that step reads them) it needs.
DERIVED: dict[int, dict[str, tuple[str, ...]]] = {2: {"energy_charging": ("energy_status",)}}
# The energy_status texts v2 wrote for a battery at Charging or Full: as they were then, whatever
# the energy module writes now.
V2_CHARGING_REFUSED = "battery was Charging during the run"
V2_CHARGING_ALLOWED = "charging allowed (--allow-charging)"


def _v1_to_v2(frame: pd.DataFrame) -> pd.DataFrame:
    """v1 (the first release): raw samples were `samples_ms`; no attempt number or device state.

    v2 names the samples `latency_samples_ms` (beside the latency summary columns), numbers
    each try of a cell (`attempt`, 1-based; v1 never retried) and adds `device_state_json`.
    """
    frame = frame.rename(columns=RENAMED[1])
    if "attempt" not in frame:
        frame["attempt"] = 1
    if "device_state_json" not in frame:
        frame["device_state_json"] = None
    return frame


def _v2_charging(status: object) -> bool | None:
    """What a v2 `energy_status` said of the battery: refused for charging, or kept with
    --allow-charging (a note among others, "; "-joined); None where it said nothing."""
    if not isinstance(status, str):
        return None
    return status.startswith(V2_CHARGING_REFUSED) or V2_CHARGING_ALLOWED in status.split("; ")


def _v2_to_v3(frame: pd.DataFrame) -> pd.DataFrame:
    """v2 said a charging battery only in the `energy_status` text; v3 says it in the typed
    `energy_charging`, which reports read instead of the text. Frames read without
    `energy_status` (a reader that asked for other columns) are left as they are."""
    if "energy_status" in frame and "energy_charging" not in frame:
        frame["energy_charging"] = frame["energy_status"].map(_v2_charging).astype(object)
    return frame


MIGRATIONS: dict[int, Callable[[pd.DataFrame], pd.DataFrame]] = {1: _v1_to_v2, 2: _v2_to_v3}


def _v1_to_v2_table(table: pa.Table) -> pa.Table:
    """_v1_to_v2 on an Arrow table."""
    import pyarrow as pa

    from pocketbench.results.arrow_values import int64_array

    table = table.rename_columns([RENAMED[1].get(n, n) for n in table.column_names])
    if "attempt" not in table.column_names:
        table = table.append_column("attempt", int64_array([1] * table.num_rows))
    if "device_state_json" not in table.column_names:
        table = table.append_column("device_state_json", pa.nulls(table.num_rows))
    return table


def _v2_to_v3_table(table: pa.Table) -> pa.Table:
    """_v2_to_v3 on an Arrow table: the same test of each text."""
    from pocketbench.results.arrow_values import bool_array

    if "energy_status" not in table.column_names or "energy_charging" in table.column_names:
        return table
    charging = bool_array([_v2_charging(v) for v in table["energy_status"].to_pylist()])
    return table.append_column("energy_charging", charging)


TABLE_MIGRATIONS: dict[int, Callable[[pa.Table], pa.Table]] = {1: _v1_to_v2_table, 2: _v2_to_v3_table}


def file_version(frame: pd.DataFrame) -> int:
    """The schema version of one stored file (all its rows share one); v1 files always carry it."""
    values = set(frame["schema_version"].dropna().astype(int)) if "schema_version" in frame else set()
    return version_of(list(frame.columns), len(frame), values)


def version_of(columns: Collection[str], rows: int, values: set[int]) -> int:
    """The schema version of a file with these columns, row count and `schema_version` values."""
    if "schema_version" not in columns or rows == 0:
        if "latency_samples_ms" not in columns:
            return 1
        # No row says it: v2 by its sample name when none carries the column, else no row to migrate.
        return 2 if "schema_version" not in columns else SCHEMA_VERSION
    if len(values) > 1:
        raise PocketbenchError(f"one results file mixes schema versions {sorted(values)}: it was edited by hand")
    return values.pop() if values else 1


def stored_names(columns: list[str], version: int) -> list[str]:
    """The names `columns` (current names) have in files of schema `version`, with the stored
    columns that the migrations compute any of them from."""
    names = list(columns)
    for step in range(SCHEMA_VERSION - 1, version - 1, -1):
        derived = DERIVED.get(step, {})
        names = list(dict.fromkeys(n for name in names for n in (name, *derived.get(name, ()))))
        back = {new: old for old, new in RENAMED.get(step, {}).items()}
        names = [back.get(name, name) for name in names]
    return names


def check_version(version: int, source: str) -> None:
    """A file from a newer pocketbench cannot be read correctly: refuse it by name."""
    if version > SCHEMA_VERSION:
        raise PocketbenchError(
            f"{source} has results schema v{version}, newer than this pocketbench (v{SCHEMA_VERSION}): "
            "upgrade pocketbench to read it"
        )


def upgrade(frame: pd.DataFrame, version: int) -> pd.DataFrame:
    """Upgrade rows that all have schema `version` (one file, or many files of that version)."""
    while version < SCHEMA_VERSION:
        frame = MIGRATIONS[version](frame)
        version += 1
    frame["schema_version"] = SCHEMA_VERSION
    return frame


def upgrade_table(table: pa.Table, version: int) -> pa.Table:
    """upgrade on an Arrow table: the same steps, the same values."""
    from pocketbench.results.arrow_values import int64_array

    while version < SCHEMA_VERSION:
        table = TABLE_MIGRATIONS[version](table)
        version += 1
    current = int64_array([SCHEMA_VERSION] * table.num_rows)
    if "schema_version" in table.column_names:
        return table.set_column(table.column_names.index("schema_version"), "schema_version", current)
    return table.append_column("schema_version", current)


def migrate(frame: pd.DataFrame, source: str) -> pd.DataFrame:
    """Upgrade a frame read from `source` (named in errors) to SCHEMA_VERSION."""
    version = file_version(frame)
    check_version(version, source)
    return upgrade(frame, version)
