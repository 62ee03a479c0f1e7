"""The one JSON shape every `--json` prints (`bench --json`, `report --json`, with or without
`--compare`, and `report --format json`): a versioned document, its schema declared here and shown
in docs/results-schema.md, and a checker small enough to need no JSON Schema library.

A reader keys on `schema` and `schema_version`: a new key is a minor change and keeps the version;
a key removed or retyped raises it.
"""

from __future__ import annotations

from typing import Any

RUN_JSON = "pocketbench.run"
RUN_JSON_VERSION = 1

_STRINGS = {"type": "array", "items": {"type": "string"}}
# JSON Schema (draft 2020-12) of the document; the rows' columns are docs/results-schema.md's.
RUN_JSON_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "pocketbench run",
    "type": "object",
    "required": ["schema", "schema_version", "run_id", "results_dir", "baseline_run_id", "tables", "warnings", "rows"],
    "additionalProperties": False,
    "properties": {
        "schema": {"const": RUN_JSON},
        "schema_version": {"const": RUN_JSON_VERSION},
        "run_id": {"type": "string"},
        "results_dir": {"type": "string"},
        "baseline_run_id": {"type": ["string", "null"]},
        "tables": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["model", "folded", "columns", "rows"],
                "additionalProperties": False,
                "properties": {
                    "model": {"type": "string"},
                    "folded": {"type": "object", "additionalProperties": {"type": "string"}},
                    "columns": _STRINGS,
                    "rows": {"type": "array", "items": _STRINGS},
                },
            },
        },
        "warnings": _STRINGS,
        "rows": {
            "type": "array",
            "items": {"type": "object", "required": ["run_id", "model", "variant", "device", "status"]},
        },
    },
}

_TYPES: dict[str, type | tuple[type, ...]] = {
    "object": dict, "array": list, "string": str, "null": type(None), "boolean": bool,
    "integer": int, "number": (int, float),
}  # fmt: skip


def schema_problems(value: Any, schema: dict[str, Any] = RUN_JSON_SCHEMA, where: str = "$") -> list[str]:
    """Where `value` breaks `schema` (the keywords RUN_JSON_SCHEMA uses), one line each; [] if valid."""
    if "const" in schema and value != schema["const"]:
        return [f"{where}: {value!r} is not {schema['const']!r}"]
    kinds = schema.get("type")
    if kinds is not None:
        wanted = [kinds] if isinstance(kinds, str) else kinds
        fits = [
            k
            for k in wanted
            if isinstance(value, _TYPES[k]) and not (k in ("integer", "number") and isinstance(value, bool))
        ]
        if not fits:
            return [f"{where}: {type(value).__name__} is not {' or '.join(wanted)}"]
    problems = []
    if isinstance(value, dict):
        problems += [f"{where}: no {key!r}" for key in schema.get("required", []) if key not in value]
        known = schema.get("properties", {})
        extra = schema.get("additionalProperties", True)
        for key, item in value.items():
            if key in known:
                problems += schema_problems(item, known[key], f"{where}.{key}")
            elif extra is False:
                problems.append(f"{where}: unknown key {key!r}")
            elif isinstance(extra, dict):
                problems += schema_problems(item, extra, f"{where}.{key}")
    if isinstance(value, list) and "items" in schema:
        for i, item in enumerate(value):
            problems += schema_problems(item, schema["items"], f"{where}[{i}]")
    return problems
