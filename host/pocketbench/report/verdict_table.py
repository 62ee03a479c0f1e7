"""The farm's regression verdicts as a report table: one model, drawn by the terminal, markdown and
HTML renderers like the results table.

The changes (regressions first, then improvements) are rows; a device, model or variant that is
the same in every row is said once above them (as the results table folds its context); the other
verdicts are counted under them, with why data was short and what the run itself reports (its
cells, a quarantined phone).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

from pocketbench.report.column_formats import EMPTY, Column, missing
from pocketbench.results.verdicts import Verdict

SHOWN = (Verdict.REGRESSION, Verdict.IMPROVEMENT)  # the rows, in this order; the rest are counted
NOTHING_CHANGED = "No significant change against the last good nightly."
SORT = ["device", "model", "variant", "metric"]
FIGURES = ("change", "p")  # aligned right; the other columns are names and sentences
FOLDABLE = ("device", "model", "variant")  # one value in every row: said once, above the table


def _change(row: pd.Series) -> str:
    return EMPTY if missing(row["change"]) else f"{row['change']:+.1%}"


def _p_value(row: pd.Series) -> str:
    return EMPTY if missing(row["p_value"]) else f"{row['p_value']:.2g}"


# Priorities as for the results table: who keeps a place in a narrow terminal (0 always).
COLUMNS: tuple[Column, ...] = (
    Column("device", "device", lambda r: str(r["device"]), 0),
    Column("model", "model", lambda r: str(r["model"]), 0),
    Column("variant", "variant", lambda r: str(r["variant"]), 0),
    Column("metric", "metric", lambda r: str(r["metric"]), 0),
    Column("verdict", "verdict", lambda r: str(r["verdict"]), 0),
    Column("change", "change", _change, 1),
    Column("p", "p", _p_value, 3),
    Column("detail", "detail", lambda r: str(r["detail"]), 2, prose=True),
)


@dataclass(frozen=True)
class VerdictTable:
    """What every renderer draws for one judged run."""

    title: str
    folded: list[tuple[str, str]]  # (name, value) of identity columns with one value: the header line
    columns: tuple[Column, ...]
    rows: list[list[str]]  # one per change, cells in column order
    verdicts: list[Verdict]  # per row: what colours it
    counts: str  # every verdict counted: "1 regression(s), 0 improvement(s), …"
    facts: list[str]  # what the run reports about itself (its cells): plain lines
    not_judged: list[str]  # why some figures were not judged, with how many
    problems: list[str]  # what went wrong around the verdicts (a quarantined phone)

    @property
    def header_line(self) -> str:
        return " · ".join(f"{name} {value}" for name, value in self.folded)

    @property
    def headers(self) -> list[str]:
        return [column.header for column in self.columns]

    @property
    def text_headers(self) -> list[str]:
        """The columns of names and sentences (aligned left)."""
        return [column.header for column in self.columns if column.key not in FIGURES]


def build_verdict_table(
    verdicts: pd.DataFrame, run_id: str, facts: Sequence[str] = (), problems: Sequence[str] = ()
) -> VerdictTable:
    """The model of a run's verdicts table (farm/regress.verdicts); `facts` and `problems` are
    the lines the caller adds about the run itself."""
    kinds = verdicts.assign(_kind=[Verdict(v) for v in verdicts["verdict"]])["_kind"]
    shown = verdicts[kinds.isin(SHOWN)]
    shown = shown.assign(_rank=[SHOWN.index(kind) for kind in kinds[shown.index]])
    shown = shown.sort_values(["_rank", *SORT], kind="stable")
    counts = kinds.value_counts()
    short = verdicts.loc[kinds == Verdict.INSUFFICIENT, "detail"].value_counts()
    cells = {column.key: [column.cell(row) for _, row in shown.iterrows()] for column in COLUMNS}
    folded = [(key, cells[key][0]) for key in FOLDABLE if len(set(cells[key])) == 1]
    columns = tuple(column for column in COLUMNS if column.key not in dict(folded))
    return VerdictTable(
        title=f"Regression verdicts — {run_id}",
        folded=folded,
        columns=columns,
        rows=[list(row) for row in zip(*(cells[column.key] for column in columns), strict=True)],
        verdicts=[Verdict(v) for v in shown["verdict"]],
        counts=(
            f"{counts.get(Verdict.REGRESSION, 0)} regression(s), {counts.get(Verdict.IMPROVEMENT, 0)} improvement(s), "
            f"{counts.get(Verdict.NO_CHANGE, 0)} unchanged, {counts.get(Verdict.INSUFFICIENT, 0)} without enough data"
        ),
        facts=list(facts),
        not_judged=[f"not judged ({n}): {why}" for why, n in short.items()],
        problems=list(problems),
    )
