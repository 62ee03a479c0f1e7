"""Readers of /proc text (pure parsers plus a thin reader for the current process)."""

from __future__ import annotations

from pathlib import Path


def parse_status_kb(text: str) -> dict[str, int]:
    """`/proc/<pid>/status` → {"VmHWM": kB, "VmRSS": kB, ...} for every `kB` line."""
    values: dict[str, int] = {}
    for line in text.splitlines():
        key, _, rest = line.partition(":")
        parts = rest.split()
        if len(parts) == 2 and parts[1] == "kB" and parts[0].isdigit():
            values[key.strip()] = int(parts[0])
    return values


def read_status_kb(field: str, pid: str = "self") -> int | None:
    """One kB field of /proc/<pid>/status, or None where /proc has no such field."""
    try:
        return parse_status_kb(Path(f"/proc/{pid}/status").read_text()).get(field)
    except OSError:
        return None
