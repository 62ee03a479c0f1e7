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
        "farm.toml: devices[1].serial: 'bluetooth:phone' is not valid (tcp:HOST:PORT, usb:SERIAL, adb:SERIAL or local)",
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
