"""The channel-sensitivity pass kept in the artifact cache, so it runs once per model and budget.

The pass prunes every channel group alone and measures the output (minutes on a MobileNetV2);
its result depends only on the module's weights and layout, the batches it measures on, the step
fields that shape it and the code that computes it — all of which make the entry's key. A search
trying many recipes of one ratio, the compression table's recipes and hosts sharing a cache
folder read it back instead. One process computes an entry while the others wait for it (a file
lock per key); an entry that cannot be read or does not match is computed again.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pocketbench.atomic import atomic_write_bytes, exclusive, lock_beside
from pocketbench.paths import cache_dir
from pocketbench.progress import Reporter

FOLDER = "sensitivity"
FORMAT = 1
# group root name → (output SQNR in dB with the group alone pruned, parameters it removes)
Sensitivity = dict[str, tuple[float, int]]


def entry_path(key: str) -> Path:
    return cache_dir() / FOLDER / f"{key[:32]}.json"


def entry_key(parts: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps({"format": FORMAT, **parts}, sort_keys=True).encode()).hexdigest()


def stored_sensitivity(
    parts: dict[str, Any], groups: list[str], compute: Callable[[], Sensitivity], reporter: Reporter
) -> tuple[Sensitivity, bool]:
    """The sensitivity of `groups` for the key `parts` names: read from the cache, or computed
    by `compute` (by this process alone: others wanting it wait) and stored. Also says whether it
    was read back."""
    key = entry_key(parts)
    path = entry_path(key)
    found = _read(path, key, groups)
    if found is not None:
        return found, True

    def waiting(pid: str) -> Any:
        return reporter.status(f"waiting for pid {pid}, which is measuring the same channel sensitivity")

    with exclusive(lock_beside(path), waiting):
        found = _read(path, key, groups)
        if found is not None:
            return found, True
        result = compute()
        entry = {"format": FORMAT, "key": key, "made_of": parts, "groups": {n: list(v) for n, v in result.items()}}
        try:
            atomic_write_bytes(path, json.dumps(entry, indent=1).encode())
        except OSError as exc:  # a full or read-only cache: the result stands, only its reuse is lost
            reporter.note(f"channel sensitivity not cached ({exc}): it will be measured again next time")
        return result, False


def _read(path: Path, key: str, groups: list[str]) -> Sensitivity | None:
    """The entry at `path` when it is whole and is the one `key` names for exactly `groups`."""
    try:
        entry = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return None  # absent or damaged: computed again
    if not isinstance(entry, dict) or entry.get("key") != key or entry.get("format") != FORMAT:
        return None
    stored = entry.get("groups")
    if not isinstance(stored, dict) or sorted(stored) != sorted(groups):
        return None
    result: Sensitivity = {}
    for name in groups:
        value = stored[name]
        if not (isinstance(value, list) and len(value) == 2 and _db(value[0]) and _count(value[1])):
            return None
        result[name] = (float(value[0]), int(value[1]))
    return result


def _db(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and not math.isnan(value)


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0
