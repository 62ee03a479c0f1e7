"""The farm matrix: the example parses, expansion is the full product, bad fields are all named."""

from pathlib import Path

import pytest
from pocketbench.farm.matrix import Cell, MatrixError, load_matrix, parse_matrix

EXAMPLE = Path(__file__).parents[1] / "examples" / "farm.toml"


def test_the_example_matrix_parses_and_expands():
    matrix = load_matrix(EXAMPLE)
    assert matrix.name == "nightly"
    assert [d.name for d in matrix.devices] == ["phone-a", "phone-b", "phone-c"]
    assert matrix.models == {"digits_cnn": ("fp32", "int8", "int8-dynamic"), "mobilenet_v2": ("fp32", "int8")}
    cells = matrix.expand()
    assert len(cells) == 3 * 5
    assert cells[0] == Cell("digits_cnn", "fp32", "phone-a")
    assert len(set(cells)) == len(cells)
    assert matrix.run.protocol.threads == 1 and matrix.run.protocol.iterations == 40
    assert matrix.regression.thresholds["latency_p50_ms"] == 0.05
    assert matrix.to_config()["kind"] == "farm"


def test_every_bad_field_is_named(tmp_path):
    data = {
        "name": "night ly",
        "variants": [],
        "models": ["digits_cnn", "digits_cnn", 3],
        "devices": [
            {"serial": "tcp:127.0.0.1:6101", "name": "a"},
            {"serial": "bluetooth:phone"},
            {"serial": "tcp:127.0.0.1", "name": "b"},
            {"serial": "tcp:127.0.0.1:6101", "name": "c"},
            {"name": "a", "serial": "usb:XYZ", "colour": "red"},
        ],
        "run": {"iterations": 0, "threads": "four", "retries": True, "ci_target": 0.05},
        "regression": {"alpha": 2, "thresholds": {"latency_p50_ms": -1, "speed": 0.1}},
        "extra": 1,
    }
    with pytest.raises(MatrixError) as caught:
        parse_matrix(data, tmp_path / "farm.toml")
    lines = str(caught.value).splitlines()
    expected = [
        "farm.toml: extra: unknown field",
        "farm.toml: name: 'night ly' is not valid",
        "farm.toml: variants: must be a non-empty list",
        "farm.toml: models[1]: model 'digits_cnn' is listed twice",
        "farm.toml: models[2]: a model name or a {name, variants} table",
        "farm.toml: devices[1].serial: 'bluetooth:phone' is not valid (tcp:HOST:PORT, usb:SERIAL, adb:SERIAL,"
        " adb://HOST:PORT/SERIAL or local)",
        "farm.toml: devices[2].serial: 'tcp:127.0.0.1' is not tcp:HOST:PORT",
        "farm.toml: devices[3].serial: 'tcp:127.0.0.1:6101' is listed twice",
        "farm.toml: devices[4].colour: unknown field",
        "farm.toml: devices[4].name: 'a' is used by another device",
        "farm.toml: run.ci_target: unknown field",
        "farm.toml: run.iterations: must be at least 1 (got 0)",
        "farm.toml: run.threads: must be an integer, not str (got 'four')",
        "farm.toml: run.retries: must be an integer, not bool",
        "farm.toml: regression.thresholds.speed: unknown field",
        "farm.toml: regression.thresholds.latency_p50_ms: -1 is outside",
        "farm.toml: regression.alpha: 2 is outside",
    ]
    for start in expected:
        assert any(line.startswith(start) for line in lines), (start, lines)
    assert len(lines) == len(expected)


def test_variant_lists_read_as_the_cli_and_api_read_them(tmp_path):
    """One reader (compress.recipe.variant_list): names stripped, a name twice refused by name."""
    data = {
        "variants": [" fp32", "int8"],
        "models": [{"name": "digits_cnn", "variants": ["int8", "int8 "]}],
        "devices": [{"serial": "local"}],
    }
    with pytest.raises(MatrixError, match=r"^farm.toml: models\[0\].variants: 'int8' named twice; rename or drop one$"):
        parse_matrix(data, tmp_path / "farm.toml")
    del data["models"][0]["variants"]
    assert parse_matrix(data, tmp_path / "farm.toml").models == {"digits_cnn": ("fp32", "int8")}


def test_missing_and_unreadable_files(tmp_path):
    with pytest.raises(MatrixError, match="no such file"):
        load_matrix(tmp_path / "nope.toml")
    broken = tmp_path / "farm.toml"
    broken.write_text("models = [\n")
    with pytest.raises(MatrixError, match=r"farm\.toml: not valid TOML"):
        load_matrix(broken)
    broken.write_text('variants = ["fp32"]\nmodels = ["digits_cnn"]\n')
    with pytest.raises(MatrixError, match=r"farm.toml: devices: required"):
        load_matrix(broken)


def test_lab_hosts_as_servers_and_their_phones(tmp_path):
    from pocketbench.farm.matrix import listed_device

    data = {
        "variants": ["fp32"],
        "models": ["digits_cnn"],
        "servers": [{"name": "lab-a", "address": "10.0.0.5:5037"}, {"name": "lab-b", "address": "127.0.0.1:25037"}],
        "devices": [
            {"name": "pixel8", "server": "lab-a", "serial": "38211FDH2000AB"},
            {"name": "pixel7", "serial": "adb://[fd00::7]:5037/R5CT10"},
        ],
        "regression": {"match": ["model"]},
    }
    matrix = parse_matrix(data, tmp_path / "lab.toml")
    assert [(d.name, d.serial, d.host) for d in matrix.devices] == [
        ("pixel8", "adb://10.0.0.5:5037/38211FDH2000AB", "lab-a"),
        ("pixel7", "adb://[fd00::7]:5037/R5CT10", "[fd00::7]:5037"),
    ]
    assert [(s.name, s.all_phones) for s in matrix.servers] == [("lab-a", False), ("lab-b", True)]
    assert matrix.regression.match_columns == ("device_model",)
    listed = listed_device(matrix.servers[1], "127.0.0.1:46101")
    assert (listed.name, listed.serial, listed.host) == (
        "lab-b-127.0.0.1-46101",
        "adb://127.0.0.1:25037/127.0.0.1:46101",
        "lab-b",
    )
    config = matrix.to_config()
    assert config["servers"] == [
        {"name": "lab-a", "address": "10.0.0.5:5037"},
        {"name": "lab-b", "address": "127.0.0.1:25037"},
    ]
    from dataclasses import replace

    grown = replace(matrix, devices=(*matrix.devices, listed))
    assert grown.to_config() == config  # phones listed at the start of a run do not change the matrix a resume checks


def test_bad_servers_are_named(tmp_path):
    data = {
        "variants": ["fp32"],
        "models": ["digits_cnn"],
        "servers": [
            {"name": "lab-a", "address": "10.0.0.5"},
            {"name": "lab a", "address": "10.0.0.6:5037"},
            {"name": "lab-c", "address": "host;rm -rf /:5037"},
            {"name": "lab-d", "address": "10.0.0.7:5037", "user": "x"},
        ],
        "devices": [{"server": "lab-z", "serial": "X"}, {"serial": "adb://10.0.0.8:99999/X"}],
    }
    with pytest.raises(MatrixError) as caught:
        parse_matrix(data, tmp_path / "lab.toml")
    message = str(caught.value)
    for where in (
        "servers[0].address",
        "servers[1].name",
        "servers[2].address",
        "servers[3].user",
        "devices[0].server",
        "devices[1].serial",
    ):
        assert f"lab.toml: {where}:" in message, message


def test_the_lab_example_parses():
    matrix = load_matrix(EXAMPLE.with_name("lab.toml"))
    assert [(s.name, str(s.address), s.all_phones) for s in matrix.servers] == [
        ("lab-a", "127.0.0.1:15037", False),
        ("lab-b", "127.0.0.1:25037", True),
    ]
    assert [(d.name, d.serial, d.host) for d in matrix.devices] == [
        ("pixel8-a", "adb://127.0.0.1:15037/38211FDH2000AB", "lab-a")
    ]
