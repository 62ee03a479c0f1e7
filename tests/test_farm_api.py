"""`pocketbench.farm.run_matrix`, the farm's API, and the CLI using only it."""

from __future__ import annotations

import ast
import socket
from pathlib import Path

from pocketbench.farm import run_matrix
from pocketbench.farm.matrix import parse_matrix
from pocketbench.results.cell_status import CellStatus

CLI = Path(__file__).resolve().parents[1] / "host" / "pocketbench" / "cli.py"


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_night_whose_phone_is_away_is_saved_judged_and_reported(tmp_path):
    """Nothing measured, yet the run, its verdicts and its reports exist, and it says incomplete."""
    port = _closed_port()
    matrix = parse_matrix(
        {
            "name": "nightly",
            "variants": ["fp32"],
            "models": ["digits_cnn"],
            "devices": [{"serial": f"tcp:127.0.0.1:{port}", "name": "away"}],
        },
        tmp_path / "farm.toml",
    )
    seen: dict[str, object] = {}
    result = run_matrix(
        matrix,
        tmp_path / "results",
        run_id="night-1",
        plan=lambda cells, m: seen.update(cells=list(cells)),
        started=lambda folder, run_id: seen.update(folder=folder, run_id=run_id),
    )
    assert seen["cells"] == [("digits_cnn", "fp32", "away")]
    assert seen["folder"] == result.folder == tmp_path / "results" / "night-1" and seen["run_id"] == "night-1"
    assert list(result.frame["status"]) == [CellStatus.NOT_RUN]
    assert result.incomplete and not result.regressed
    assert all(p.is_file() and p.parent == result.folder for p in result.reports) and result.reports


def test_the_cli_reaches_the_farm_only_through_its_api():
    """cli.py imports `pocketbench.farm` (run_matrix), never a module inside it."""
    inside = [
        node.module
        for node in ast.walk(ast.parse(CLI.read_text()))
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("pocketbench.farm.")
    ]
    assert inside == []
