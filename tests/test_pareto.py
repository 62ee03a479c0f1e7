"""The Pareto view is a pure function of the rows: optimal = nothing cheaper and at least as good."""

from pocketbench.report.table import build_table, pareto_lines
from pocketbench.results.pareto import pareto_front, pareto_marks
from pocketbench.results.store import add_relative_columns, to_frame


def test_pareto_front_keeps_only_undominated_points():
    # (cost, quality): b dominates a; c is cheaper but worse; d ties b exactly (neither dominates)
    points = [(2.0, 0.90), (1.5, 0.95), (1.0, 0.80), (1.5, 0.95), (3.0, 0.99)]
    assert pareto_front(points) == [False, True, True, True, True]


def _row(variant, latency, size, accuracy, status="ok", **extra):
    return {
        "model": "m",
        "device": "local",
        "variant": variant,
        "status": status,
        "latency_p50_ms": latency,
        "size_bytes": size,
        "size_zipped_bytes": size,
        "accuracy": accuracy,
        **extra,
    }


def test_marks_per_cost_and_failed_rows_are_never_optimal():
    frame = add_relative_columns(
        to_frame(
            [
                _row("fp32", 1.0, 1000, 0.99, params=10, macs=100, sparsity=0.0),
                _row("int8", 0.5, 250, 0.98, params=10, macs=100, sparsity=0.0),
                _row("slow-int8", 0.9, 250, 0.97, params=10, macs=100, sparsity=0.0),
                _row("broken", None, None, None, status="export_error", error="w4: no linear layers"),
            ]
        )
    )
    assert pareto_marks(frame) == ["lat size", "lat size", None, None]
    table = build_table(frame, "m")
    assert table.headers[-2:] == ["Pareto", "status"]
    assert [row[-2] for row in table.rows] == ["lat size", "lat size", "·", "—"]
    assert "params" not in table.headers and ("params", "10") in table.folded  # the same in every row
    assert pareto_lines(frame) == [
        "Pareto-optimal accuracy vs latency: fp32, int8",
        "Pareto-optimal accuracy vs size: fp32, int8",
    ]
