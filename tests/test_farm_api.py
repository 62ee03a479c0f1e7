"""`pocketbench.farm.run_matrix`, the farm's API, and the CLI using only it."""

from __future__ import annotations

import ast
import socket
from pathlib import Path

from pocketbench.farm import run_matrix
from pocketbench.farm.matrix import parse_matrix
from pocketbench.progress import Reporter
from pocketbench.results.cell_status import CellStatus

CLI = Path(__file__).resolve().parents[1] / "host" / "pocketbench" / "cli.py"


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _Notes(Reporter):
    def __init__(self) -> None:
        self.notes: list[str] = []

    def note(self, message: str, mark: str = "") -> None:
        self.notes.append(message)


def test_a_night_whose_phone_is_away_is_saved_judged_and_reported(tmp_path):
    """Nothing measured (its phone away, the other lab host's adb server silent), yet the run, its
    verdicts and its reports exist, the silent server is named, and it says incomplete."""
    port, silent = _closed_port(), _closed_port()
    matrix = parse_matrix(
        {
            "name": "nightly",
            "variants": ["fp32"],
            "models": ["digits_cnn"],
            "devices": [{"serial": f"tcp:127.0.0.1:{port}", "name": "away"}],
            "servers": [{"name": "lab-b", "address": f"127.0.0.1:{silent}"}],
        },
        tmp_path / "farm.toml",
    )
    seen: dict[str, object] = {}
    result = run_matrix(
        matrix,
        tmp_path / "results",
        run_id="night-1",
        reporter=(reporter := _Notes()),
        plan=lambda cells, m: seen.update(cells=list(cells)),
        started=lambda folder, run_id: seen.update(folder=folder, run_id=run_id),
    )
    assert seen["cells"] == [("digits_cnn", "fp32", "away")]
    assert seen["folder"] == result.folder == tmp_path / "results" / "night-1" and seen["run_id"] == "night-1"
    assert list(result.frame["status"]) == [CellStatus.NOT_RUN]
    assert list(result.hosts_down) == ["lab-b"] and f"127.0.0.1:{silent}" in result.hosts_down["lab-b"]
    assert [n for n in reporter.notes if n.startswith("server lab-b: ")], reporter.notes
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
