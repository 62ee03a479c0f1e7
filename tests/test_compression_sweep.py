"""The issue's done-command on digits_cnn through the CLI, plus a TOML sweep file: every variant
exported, run by the real runtime, scored on the real held-out labels."""

import json

import pytest
from pocketbench.cli import app
from pocketbench.compress.recipe import Recipe
from typer.testing import CliRunner

pytestmark = [pytest.mark.slow, pytest.mark.training]  # sweeps that train and export each variant

VARIANTS = "fp32,int8,int8-qat,prune50+distill,prune50+distill+int8,w4"
SWEEP = """
[variants.int8-meanstd-k2]
steps = [{ type = "quantize", observer = "meanstd", k = 2 }]

[variants.sparse60-grad]
steps = [{ type = "prune", criterion = "gradient", sparsity = 0.6 }]
"""


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("compression")
    sweep = folder / "sweep.toml"
    sweep.write_text(SWEEP)
    result = CliRunner().invoke(
        app,
        ["bench", "--model", "digits_cnn", "--variants", VARIANTS, "--sweep", str(sweep), "--device", "local",
         "--iterations", "3", "--warmup", "1", "--results", str(folder / "results"), "--json"],
        env={"COLUMNS": "250"},
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    return {row["variant"]: row for row in json.loads(result.stdout)["rows"]}, result.stderr


def test_every_variant_ran_with_real_accuracy_and_its_recipe(run):
    rows, _ = run
    assert list(rows) == [*VARIANTS.split(","), "int8-meanstd-k2", "sparse60-grad"]
    for name, row in rows.items():
        assert row["status"] == "ok", row["error"]
        assert 0 < row["accuracy"] <= 1
        assert row["recipe"]["name"] == name
        assert Recipe.from_dict(row["recipe"]).name == name
        assert row["params"] > 0 and row["macs"] > 0 and row["size_zipped_bytes"] < row["size_bytes"]
    assert rows["fp32"]["accuracy"] > 0.9


def test_int8_static_is_within_one_point_of_fp32(run):
    rows, _ = run
    assert abs(rows["int8"]["accuracy_vs_fp32_points"]) <= 1.0
    assert rows["int8"]["compression_ratio_vs_fp32"] > 3


def test_meanstd_observer_accuracy_is_reported(run):
    rows, _ = run
    row = rows["int8-meanstd-k2"]
    assert row["recipe"]["steps"][0]["_data"]["observer"] == "meanstd"
    assert row["accuracy_vs_fp32_points"] == pytest.approx(100 * (row["accuracy"] - rows["fp32"]["accuracy"]))
    assert row["layer_sqnr_min_db"] > 10


def test_structured_pruning_cuts_macs_and_distillation_recovers_accuracy(run):
    rows, _ = run
    for name in ("prune50+distill", "prune50+distill+int8"):
        # Half the channels of the prunable groups; the stem and the classifier keep theirs.
        assert rows[name]["macs_ratio_vs_fp32"] <= 0.7
        assert rows[name]["params"] < 0.5 * rows["fp32"]["params"]
    assert rows["prune50+distill"]["accuracy_vs_fp32_points"] >= -2.0


def test_qat_and_w4_export_and_keep_accuracy(run):
    rows, _ = run
    assert rows["int8-qat"]["size_ratio_vs_fp32"] < 0.35
    assert rows["int8-qat"]["accuracy_vs_fp32_points"] >= -2.0
    assert rows["w4"]["size_bytes"] < rows["int8"]["size_bytes"]
    assert rows["w4"]["compression_note"] == "fp32 layers: classifier.3"  # 200 inputs: not a multiple of 32


def test_unstructured_sparsity_shows_in_the_zipped_size_only(run):
    rows, _ = run
    sparse = rows["sparse60-grad"]
    assert sparse["sparsity"] == pytest.approx(0.6, abs=1e-4)
    assert sparse["size_ratio_vs_fp32"] == pytest.approx(1.0, abs=0.01)
    assert sparse["compression_ratio_vs_fp32"] > 1.3


def test_table_shows_compression_columns_pareto_and_the_sparsity_warning(run):
    _, stderr = run
    for text in ("MACs", "zipped", "Pareto", "Pareto-optimal accuracy vs latency", "don't run faster"):
        assert text in stderr
