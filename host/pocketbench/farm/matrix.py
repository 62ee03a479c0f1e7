"""The farm matrix: a TOML file of models × variants × devices and run settings.

Parsed with tomllib and validated completely before anything runs, so a typo in the last
device fails in a second with every bad field named (`farm.toml: devices[1].serial: …`)
instead of after an hour of measuring. `expand` turns the matrix into the cells to measure.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from pocketbench.compress.recipe import RecipeError, variant_list
from pocketbench.devices.adb.server_address import ServerAddress, is_server_spec, parse_address, parse_server_spec
from pocketbench.errors import PocketbenchError, shown
from pocketbench.measure.settings import ProtocolSettings, SettingsError, farm_keys
from pocketbench.names import NAME_MAX, NAME_PATTERN, NAME_RULE, SERIAL_PATTERN, SERIAL_RULE, name_problem
from pocketbench.paths import TOML_MAX_BYTES, read_bounded

# Regression metrics the verdicts can use (see farm/regress.py); thresholds are relative.
DEFAULT_THRESHOLDS = {"latency_p50_ms": 0.05, "size_bytes": 0.01, "peak_rss_kb": 0.10, "energy_mj_per_inference": 0.10}
_SERIAL = re.compile(rf"local|(tcp|usb|adb):(?!.*\.\.){SERIAL_PATTERN.pattern}|adb://[^/\s]+/{SERIAL_PATTERN.pattern}")
_SERIAL_HINT = "tcp:HOST:PORT, usb:SERIAL, adb:SERIAL, adb://HOST:PORT/SERIAL or local"
# What a verdict holds equal between tonight and the nights it is compared with ([regression] match).
MATCH_COLUMNS = {"model": "device_model", "host": "device_host"}
# What one matrix may ask for: beyond these a file is a mistake (or an attack), not a plan.
MAX_CELLS = 10_000
MAX_ENTRIES = 1_000  # models, variants or devices listed
MAX_MODEL_REF = 1_024  # a built-in name, file.py:factory or module:factory


class MatrixError(PocketbenchError):
    """The matrix file is invalid; the message lists every bad field, one per line."""


@dataclass(frozen=True)
class DeviceSpec:
    """A phone of the farm: `name` is stable across nights (rows and history key on it);
    `serial` says how to reach it today (`tcp:HOST:PORT`, `usb:SERIAL`, `adb:SERIAL`,
    `adb://HOST:PORT/SERIAL`, `local`); `host` names the lab host it hangs on (a [[servers]] name,
    else the HOST:PORT of an adb:// spec; empty: this computer). `listed` marks a phone found by
    listing a server at the start of the run, not named in the file."""

    name: str
    serial: str
    host: str = ""
    listed: bool = False


@dataclass(frozen=True)
class ServerSpec:
    """A lab host's adb server: `name` is stable across nights (rows carry it as `device_host`),
    `address` is where its server answers today (HOST:PORT, through an ssh tunnel or not)."""

    name: str
    address: ServerAddress
    all_phones: bool = False  # no [[devices]] names it: every phone it lists at the start of a run


# The farm's own protocol defaults: single-threaded and one process per cell, comparable across
# phones and nights (a cell's repetitions run back to back on its phone's worker).
FARM_PROTOCOL = ProtocolSettings(threads=1, repetitions=1)
# Protocol settings a matrix may set under [run]: all but the adaptive knobs (a farm cell gets a
# fixed number of processes, so nights compare like with like) and profiling (the bench's).
MATRIX_PROTOCOL_FIELDS = farm_keys()  # the settings not marked bench-only


@dataclass(frozen=True)
class RunSettings:
    """The measurement protocol of every cell, and what the farm adds around it."""

    protocol: ProtocolSettings = FARM_PROTOCOL
    retries: int = 1  # extra attempts for a cell failing on the device
    quarantine_after: int = 3  # consecutive failed cells before a device is quarantined
    health_timeout_s: float = 60.0

    def to_config(self) -> dict[str, Any]:
        """Flat, as the manifest's `run` table: the protocol's settings beside the farm's."""
        return {
            **asdict(self.protocol),
            "retries": self.retries,
            "quarantine_after": self.quarantine_after,
            "health_timeout_s": self.health_timeout_s,
        }


@dataclass(frozen=True)
class RegressionSettings:
    alpha: float = 0.01  # significance level of the per-run test
    min_samples: int = 5  # fewer raw samples on either side: insufficient data
    thresholds: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_THRESHOLDS))
    match: tuple[str, ...] = tuple(MATCH_COLUMNS)  # a baseline night had the same phone model and host

    @property
    def match_columns(self) -> tuple[str, ...]:
        return tuple(MATCH_COLUMNS[m] for m in self.match)


@dataclass(frozen=True)
class Cell:
    """One measurement of the matrix (the row's model, variant and device name)."""

    model: str
    variant: str
    device: str


@dataclass(frozen=True)
class Matrix:
    name: str
    source: Path
    models: dict[str, tuple[str, ...]]  # model → its variants, in file order
    devices: tuple[DeviceSpec, ...]
    run: RunSettings
    regression: RegressionSettings
    servers: tuple[ServerSpec, ...] = ()

    def expand(self) -> list[Cell]:
        """Every cell, grouped by device in file order (one worker walks each device's list)."""
        return [
            Cell(model, variant, device.name)
            for device in self.devices
            for model, variants in self.models.items()
            for variant in variants
        ]

    def to_config(self) -> dict[str, Any]:
        """What the run manifest records about the matrix."""
        return {
            "kind": "farm",
            "farm": self.name,
            "source": str(self.source),
            "models": {m: list(v) for m, v in self.models.items()},
            "devices": [{"name": d.name, "serial": d.serial} for d in self.devices if not d.listed],
            **(
                {"servers": [{"name": s.name, "address": str(s.address)} for s in self.servers]} if self.servers else {}
            ),
            "run": self.run.to_config(),
            "regression": {
                "alpha": self.regression.alpha,
                "min_samples": self.regression.min_samples,
                "thresholds": self.regression.thresholds,
                **({"match": list(self.regression.match)} if self.regression.match != tuple(MATCH_COLUMNS) else {}),
            },
        }


def load_matrix(path: Path) -> Matrix:
    """Read and validate `path`; raises MatrixError naming every bad field."""
    try:
        data = tomllib.loads(read_bounded(path, TOML_MAX_BYTES, "farm matrix"))
    except FileNotFoundError as exc:
        raise MatrixError(f"{path}: no such file: give the farm matrix TOML (see examples/farm.toml)") from exc
    except tomllib.TOMLDecodeError as exc:
        raise MatrixError(f"{path.name}: not valid TOML: {exc}") from exc
    return parse_matrix(data, path)


def parse_matrix(data: dict[str, Any], source: Path) -> Matrix:
    """Validate a parsed TOML document (pure)."""
    v = _Validator(source.name)
    v.unknown(data, "", {"name", "models", "variants", "devices", "servers", "run", "regression"})
    name = v.string(data, "", "name", default="nightly", pattern=NAME_PATTERN, hint=NAME_RULE)
    variants = v.variant_names(data, "", "variants", required=True)
    models = _models(v, data.get("models"), variants or [])
    servers = _servers(v, data.get("servers"))
    devices = _devices(v, data.get("devices"), servers)
    named = {d.host for d in devices}
    servers = [replace(s, all_phones=s.name not in named) for s in servers]
    run = _run(v, v.table(data, "", "run"))
    regression = _regression(v, v.table(data, "", "regression"))
    if not devices and not servers:
        v.error("devices", "required: one [[devices]] table per phone (or [[servers]] whose phones to measure)")
    cells = len(devices) * sum(len(own) for own in models.values())
    if cells > MAX_CELLS:
        v.error(
            "models", f"{cells} cells (models × variants × devices) is over the limit of {MAX_CELLS}: split the matrix"
        )
    if v.errors or name is None:  # the validator returns None only after recording why
        raise MatrixError("\n".join(v.errors))
    return Matrix(name, source, models, tuple(devices), run, regression, tuple(servers))


def _models(v: _Validator, raw: Any, variants: list[str]) -> dict[str, tuple[str, ...]]:
    if not isinstance(raw, list) or not raw:
        v.error("models", "required: a non-empty list of model names or {name, variants} tables")
        return {}
    if len(raw) > MAX_ENTRIES:
        v.error("models", f"{len(raw)} models is over the limit of {MAX_ENTRIES}")
        return {}
    models: dict[str, tuple[str, ...]] = {}
    for i, entry in enumerate(raw):
        where = f"models[{i}]"
        if isinstance(entry, str):
            model, own = entry, variants
        elif isinstance(entry, dict):
            v.unknown(entry, where, {"name", "variants"})
            model = v.string(entry, where, "name", required=True) or ""
            own = v.variant_names(entry, where, "variants") or variants
        else:
            v.error(where, "a model name or a {name, variants} table")
            continue
        if not model.strip():
            v.error(where, "empty model name")
        elif len(model) > MAX_MODEL_REF:
            v.error(where, f"model {shown(model)} is over {MAX_MODEL_REF} characters")
        elif model in models:
            v.error(where, f"model {model!r} is listed twice")
        else:
            models[model] = tuple(own)
    return models


def _clashes(
    v: _Validator, where: str, kind: str, taken: list[tuple[str, Any]], new: tuple[str, Any], field: str
) -> bool:
    """Whether `new` (name, address) repeats the name or the address of an entry before it (said)."""
    name, value = new
    if any(name == other for other, _ in taken):
        v.error(f"{where}.name", f"{shown(name)} is used by another {kind}: names must be unique")
    elif any(value == other for _, other in taken):
        v.error(f"{where}.{field}", f"{shown(str(value))} is listed twice")
    else:
        return False
    return True


def _tables(v: _Validator, raw: list[Any], key: str, expected: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """The tables of an array of tables with where each is (`devices[2]`); anything else is an error."""
    for i, entry in enumerate(raw):
        if isinstance(entry, dict):
            yield f"{key}[{i}]", entry
        else:
            v.error(f"{key}[{i}]", expected)


def _servers(v: _Validator, raw: Any) -> list[ServerSpec]:
    """[[servers]]: a lab host's adb server each, by a stable name and today's address."""
    if raw is None:
        return []
    if not isinstance(raw, list) or len(raw) > MAX_ENTRIES:
        v.error("servers", f"one [[servers]] table per lab host (at most {MAX_ENTRIES})")
        return []
    servers: list[ServerSpec] = []
    for where, entry in _tables(v, raw, "servers", "a table with name and address (HOST:PORT of its adb server)"):
        v.unknown(entry, where, {"name", "address"})
        name = v.string(entry, where, "name", required=True, pattern=NAME_PATTERN, hint=NAME_RULE)
        text = v.string(entry, where, "address", required=True)
        if name is None or text is None:
            continue
        try:
            address = parse_address(text, "address")
        except PocketbenchError as exc:
            v.error(f"{where}.address", str(exc))
            continue
        if not _clashes(v, where, "server", [(s.name, s.address) for s in servers], (name, address), "address"):
            servers.append(ServerSpec(name, address))
    return servers


def _devices(v: _Validator, raw: Any, servers: list[ServerSpec]) -> list[DeviceSpec]:
    if raw is None and servers:
        return []
    if not isinstance(raw, list) or not raw:
        v.error("devices", "required: one [[devices]] table per phone, each with a serial")
        return []
    if len(raw) > MAX_ENTRIES:
        v.error("devices", f"{len(raw)} devices is over the limit of {MAX_ENTRIES}")
        return []
    by_name = {s.name: s for s in servers}
    devices: list[DeviceSpec] = []
    for where, entry in _tables(v, raw, "devices", "a table with serial (and an optional name)"):
        v.unknown(entry, where, {"name", "serial", "server"})
        host = v.string(entry, where, "server")
        if host is not None and host not in by_name:
            known = ", ".join(by_name) or "none given"
            v.error(f"{where}.server", f"{shown(host)} is not a [[servers]] name ({known})")
            continue
        if host is not None:  # a serial as that host's `adb devices` shows it
            bare = v.string(entry, where, "serial", required=True, pattern=SERIAL_PATTERN, hint=SERIAL_RULE)
            serial = by_name[host].address.phone(bare) if bare and ".." not in bare else None
            if bare and serial is None:
                v.error(f"{where}.serial", f"{shown(bare)} is not valid ({SERIAL_RULE})")
        else:
            serial = v.string(entry, where, "serial", required=True, pattern=_SERIAL, hint=_SERIAL_HINT)
            host = ""
        if serial and serial.startswith("tcp:") and not re.fullmatch(r"tcp:[^:\s]+:\d{1,5}", serial):
            v.error(f"{where}.serial", f"{shown(serial)} is not tcp:HOST:PORT")
        if serial and is_server_spec(serial) and not host:
            try:
                address = parse_server_spec(serial)[0]
            except PocketbenchError as exc:
                v.error(f"{where}.serial", str(exc))
                continue
            host = next((s.name for s in servers if s.address == address), str(address))
        name = v.string(entry, where, "name", default=serial, pattern=NAME_PATTERN, hint=NAME_RULE)
        if serial is None or name is None:
            continue
        if not _clashes(v, where, "device", [(d.name, d.serial) for d in devices], (name, serial), "serial"):
            devices.append(DeviceSpec(name, serial, host))
    return devices


def listed_device(server: ServerSpec, serial: str) -> DeviceSpec:
    """A phone found on `server` at the start of a run, named `<server>-<serial>` (its characters
    outside a name's made '-'): the same phone on the same host keeps its name night after night."""
    name = re.sub(r"[^A-Za-z0-9._+-]", "-", f"{server.name}-{serial}").replace("..", "-")[:NAME_MAX]
    return DeviceSpec(name, server.address.phone(serial), server.name, listed=True)


def _run(v: _Validator, raw: dict[str, Any]) -> RunSettings:
    """The [run] table: the farm's own knobs checked here, the protocol's by ProtocolSettings
    (each of its problems named as the file's key, with the value given)."""
    d = RunSettings()
    v.unknown(raw, "run", {*MATRIX_PROTOCOL_FIELDS, "retries", "quarantine_after", "health_timeout_s"})
    given = {name: raw[name] for name in MATRIX_PROTOCOL_FIELDS if name in raw}
    try:
        protocol = replace(d.protocol, **given)
    except SettingsError as exc:
        for problem in exc.problems:
            v.error(f"run.{problem.field}", f"{problem.rule} (got {shown(problem.value)})")
        protocol = d.protocol
    return RunSettings(
        protocol=protocol,
        retries=v.integer(raw, "run", "retries", d.retries, minimum=0, maximum=10),
        quarantine_after=v.integer(raw, "run", "quarantine_after", d.quarantine_after, minimum=1, maximum=MAX_CELLS),
        health_timeout_s=v.number(raw, "run", "health_timeout_s", d.health_timeout_s, low=0.0, high=3600.0),
    )


def _regression(v: _Validator, raw: dict[str, Any]) -> RegressionSettings:
    d = RegressionSettings()
    v.unknown(raw, "regression", {"alpha", "min_samples", "thresholds", "match"})
    match = d.match
    if "match" in raw:
        given = raw["match"]
        if not isinstance(given, list) or not all(m in MATCH_COLUMNS for m in given) or len(set(given)) != len(given):
            v.error(
                "regression.match",
                f"a list of {', '.join(repr(m) for m in MATCH_COLUMNS)} (each at most once)"
                " that a baseline night must share with tonight; [] compares any",
            )
        else:
            match = tuple(given)
    thresholds = dict(d.thresholds)
    given = v.table(raw, "regression", "thresholds")
    v.unknown(given, "regression.thresholds", set(DEFAULT_THRESHOLDS))
    for metric in given:
        if metric in DEFAULT_THRESHOLDS:
            thresholds[metric] = v.number(given, "regression.thresholds", metric, 0.0, low=0.0, high=10.0)
    return RegressionSettings(
        alpha=v.number(raw, "regression", "alpha", d.alpha, low=0.0, high=0.5),
        min_samples=v.integer(raw, "regression", "min_samples", d.min_samples, minimum=2, maximum=1_000_000),
        thresholds=thresholds,
        match=match,
    )


class _Validator:
    """Collects every field error instead of stopping at the first."""

    def __init__(self, filename: str) -> None:
        self.filename = filename
        self.errors: list[str] = []

    def error(self, where: str, message: str) -> None:
        self.errors.append(f"{self.filename}: {where}: {message}")

    def unknown(self, table: dict[str, Any], where: str, allowed: set[str]) -> None:
        for key in table:
            if key not in allowed:
                self.error(_join(where, key), f"unknown field (expected one of {', '.join(sorted(allowed))})")

    def table(self, data: dict[str, Any], where: str, key: str) -> dict[str, Any]:
        value = data.get(key, {})
        if not isinstance(value, dict):
            self.error(_join(where, key), "must be a table")
            return {}
        return value

    def string(
        self,
        data: dict[str, Any],
        where: str,
        key: str,
        *,
        required: bool = False,
        default: str | None = None,
        pattern: re.Pattern[str] | None = None,
        hint: str = "",
    ) -> str | None:
        if key not in data:
            if required:
                self.error(_join(where, key), "required")
            return default
        value = data[key]
        if not isinstance(value, str):
            self.error(_join(where, key), f"must be a string, not {type(value).__name__}")
            return None
        if pattern is not None and not pattern.fullmatch(value):
            self.error(_join(where, key), f"{shown(value)} is not valid ({hint})")
            return None
        return value

    def variant_names(self, data: dict[str, Any], where: str, key: str, required: bool = False) -> list[str] | None:
        value = data.get(key)
        if value is None:
            if required:
                self.error(_join(where, key), 'required: a non-empty list of variant names, e.g. ["fp32", "int8"]')
            return None
        if not isinstance(value, list) or not value or not all(isinstance(x, str) and x.strip() for x in value):
            self.error(_join(where, key), "must be a non-empty list of non-empty strings")
            return None
        if len(value) > MAX_ENTRIES:
            self.error(_join(where, key), f"{len(value)} names is over the limit of {MAX_ENTRIES}")
            return None
        try:
            names = [str(n) for n in variant_list(value, key)]
        except RecipeError as exc:
            self.error(_join(where, key), str(exc).removeprefix(f"{key}: "))
            return None
        for name in names:  # a variant name becomes part of file names and rows, like a run id
            if (problem := name_problem(name)) is not None:
                self.error(_join(where, key), f"variant {shown(name)}: {problem} ({NAME_RULE})")
        return names

    def integer(self, data: dict[str, Any], where: str, key: str, default: int, minimum: int, maximum: int) -> int:
        value = data.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int):
            self.error(_join(where, key), f"must be an integer, not {type(value).__name__}")
            return default
        if not minimum <= value <= maximum:
            self.error(_join(where, key), f"{shown(value)} is outside [{minimum}, {maximum}]")
            return default
        return value

    def number(
        self, data: dict[str, Any], where: str, key: str, default: float, low: float, high: float = float("inf")
    ) -> float:
        value = data.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.error(_join(where, key), f"must be a number, not {type(value).__name__}")
            return default
        if not low <= value <= high:
            self.error(_join(where, key), f"{shown(value)} is outside [{low}, {high}]")
            return default
        return float(value)


def _join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key
