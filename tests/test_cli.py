"""The CLI through typer's runner, and the lean-import promise of `pocketbench --help`."""

import json
import subprocess
import sys

import pytest
from pocketbench.cli import app
from pocketbench.report.run_json_schema import schema_problems
from typer.testing import CliRunner

runner = CliRunner()
REQUIRED = {
    "model", "variant", "device", "status", "error", "size_bytes", "latency_p50_ms", "latency_p90_ms",
    "accuracy", "sqnr_db", "delegated_fraction", "recipe",
}  # fmt: skip


@pytest.mark.slow  # a real bench of two variants
def test_bench_json_is_the_only_thing_on_stdout(tmp_path):
    result = runner.invoke(
        app,
        ["bench", "--model", "digits_cnn", "--variants", "fp32,int8", "--device", "local",
         "--iterations", "5", "--results", str(tmp_path), "--json"],
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    run = json.loads(result.stdout)
    assert schema_problems(run) == [] and run["baseline_run_id"] is None  # the one `--json` document
    assert [r["variant"] for r in run["rows"]] == ["fp32", "int8"]
    for row in run["rows"]:
        assert set(row) >= REQUIRED
        assert row["status"] == "ok" and row["device"] == "local"
        assert row["recipe"]["name"] == row["variant"]
    assert (tmp_path / run["run_id"] / "results.parquet").exists()

    shown = runner.invoke(app, ["report", run["run_id"], "--results", str(tmp_path), "--json"])
    assert shown.exit_code == 0
    assert json.loads(shown.stdout) == run


def test_bench_with_an_unknown_model_runs_nothing_and_exits_1(tmp_path):
    result = runner.invoke(
        app, ["bench", "--model", "nope", "--variants", "fp32", "--results", str(tmp_path), "--json"]
    )
    assert result.exit_code == 1
    assert "unknown model 'nope'" in str(result.exception)
    assert result.stdout == "" and list(tmp_path.iterdir()) == []


def test_report_of_a_missing_run_is_one_clear_line(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "pocketbench", "report", "nope", "--results", str(tmp_path)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"error: no run 'nope' in {tmp_path}: `ls {tmp_path}` lists the run ids"
    ]


def test_models_lists_the_builtins():
    result = runner.invoke(app, ["models"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    for name in ("digits_cnn", "mobilenet_v2", "tiny_llama", "tiny_transformer"):
        assert name in result.stdout


def test_help_does_not_import_torch():
    code = (
        "import sys; from typer.testing import CliRunner; from pocketbench.cli import app; "
        "r = CliRunner().invoke(app, ['--help']); assert r.exit_code == 0; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'executorch', 'pandas')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
