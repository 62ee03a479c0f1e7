"""The example nightly workflow: valid YAML with the trigger, runner labels and steps it promises,
and the matrix it runs is the example that parses."""

from pathlib import Path

import yaml
from pocketbench.farm.matrix import load_matrix

ROOT = Path(__file__).parents[1]


def test_the_nightly_workflow_runs_the_example_farm_and_keeps_the_report():
    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "nightly.yml").read_text())
    triggers = workflow[True]  # YAML 1.1 reads the `on:` key as True
    assert triggers["schedule"][0]["cron"].split()[2:] == ["*", "*", "*"]
    job = workflow["jobs"]["farm"]
    assert job["runs-on"] == ["self-hosted", "android-phones"]
    steps = {step.get("name", step.get("uses")): step for step in job["steps"]}
    assert job["steps"][0]["uses"].startswith("actions/checkout@")
    assert steps["Set up pocketbench"]["run"] == "python3 -m pip install rust-just && just setup"
    farm = steps["Farm run"]["run"]
    assert "pocketbench farm examples/farm.toml --run-id" in farm
    upload = steps["Keep the report"]
    assert upload["uses"].startswith("actions/upload-artifact@") and upload["if"] == "always()"
    assert "report.html" in upload["with"]["path"] and "report.md" in upload["with"]["path"]
    assert "git push origin HEAD:farm-results" in steps["Save the history"]["run"]
    load_matrix(ROOT / "examples" / "farm.toml")
