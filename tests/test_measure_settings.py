"""The one settings type of the measurement protocol: every problem named by its field, and the
CLI and the farm matrix each naming it their own way (a flag, a file's key) — never the other's."""

from __future__ import annotations

from dataclasses import fields

import pytest
import typer
from pocketbench.cli import app, setting_flag
from pocketbench.errors import PocketbenchError
from pocketbench.farm.matrix import MatrixError, parse_matrix
from pocketbench.measure.settings import ProtocolSettings, SettingsError
from typer.testing import CliRunner


def test_every_problem_is_named_by_its_field():
    with pytest.raises(SettingsError) as caught:
        ProtocolSettings(iterations=0, warmup=-1, repetitions=0, ci_target=1.5, threads=True, energy_window_s="2")
    assert [p.field for p in caught.value.problems] == [
        "warmup", "iterations", "threads", "repetitions", "ci_target", "energy_window_s",
    ]  # fmt: skip
    assert str(caught.value).startswith("warmup cannot be negative; iterations must be at least 1; ")
    assert "threads must be an integer, not bool" in str(caught.value)
    assert "--" not in str(caught.value)


def test_good_settings_keep_their_values_and_numbers_are_floats():
    settings = ProtocolSettings(iterations=3, energy_window_s=2, repetitions=None)
    assert settings.iterations == 3 and settings.energy_window_s == 2.0
    assert isinstance(settings.energy_window_s, float)
    assert settings.policy.fixed is None


def test_the_cli_names_its_flag():
    result = CliRunner().invoke(app, ["bench", "--model", "digits_cnn", "--iterations", "0", "--repetitions", "0"])
    assert result.exit_code != 0
    assert str(result.exception) == "--iterations must be at least 1; --repetitions must be at least 1"


def test_every_setting_has_its_cli_flag():
    bench = typer.main.get_command(app).commands["bench"]
    flags = {flag for param in bench.params for flag in param.opts}
    for f in fields(ProtocolSettings):
        assert setting_flag(f.name) in flags, f.name


def test_the_api_and_the_farm_take_every_setting_from_the_table():
    """One field is an API keyword and, unless bench-only, a farm [run] key (no hand-made list)."""
    import inspect

    from pocketbench.api import bench
    from pocketbench.farm.matrix import MATRIX_PROTOCOL_FIELDS
    from pocketbench.measure.settings import settings_table

    table = settings_table()
    keywords = inspect.signature(bench).parameters
    for s in table:
        assert keywords[s.name].default == s.default and f"`{s.name}`" in (bench.__doc__ or ""), s.name
    assert tuple(s.name for s in table if not s.bench_only) == MATRIX_PROTOCOL_FIELDS
    assert {"ci_target", "profile"} <= {s.name for s in table if s.bench_only}


def test_an_unknown_api_setting_is_refused_by_name(tmp_path):
    import pocketbench

    with pytest.raises(PocketbenchError, match=r"^unknown setting\(s\) iteration: the settings are warmup, "):
        pocketbench.bench("digits_cnn", "fp32", "local", iteration=3, results=tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_the_farm_matrix_names_its_key_and_the_value(tmp_path):
    data = {
        "variants": ["fp32"],
        "models": ["digits_cnn"],
        "devices": [{"serial": "local"}],
        "run": {"repetitions": 0, "batch_min_ms": 20000},
    }
    with pytest.raises(MatrixError) as caught:
        parse_matrix(data, tmp_path / "m.toml")
    assert str(caught.value).splitlines() == [
        "m.toml: run.repetitions: must be at least 1 (got 0)",
        "m.toml: run.batch_min_ms: must be in [0, 10000] ms (0: time single calls) (got 20000)",
    ]


def test_threads_come_from_the_user_else_the_device_else_the_runtime():
    from pocketbench.devices.base import resolve_threads
    from pocketbench.devices.local import LocalDevice

    class Phone:
        device_id = "phone"

    local = LocalDevice()
    assert resolve_threads(None, local) == (1, "device-policy", LocalDevice.default_threads_reason)
    assert resolve_threads(None, Phone()) == (0, "runtime", None)
    assert resolve_threads(0, local) == (0, "runtime", None)
    assert resolve_threads(3, Phone()) == (3, "settings", None)
    with pytest.raises(SettingsError, match="threads cannot be negative"):
        ProtocolSettings(threads=-1)
    with pytest.raises(SettingsError, match="cores must be one of prime, big, all"):
        ProtocolSettings(cores="little")
