"""Which variants are Pareto-optimal: quality against latency and against size, per device.

Analysis of the rows, not rendering: the report marks and names these variants, the search
(tune) keeps its front with `pareto_front`, and the compression benchmark tabulates them.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from pocketbench.results.cell_status import CellStatus

# What a variant costs, by the mark it earns when nothing cheaper is at least as good.
COSTS = (("lat", "latency_p50_ms"), ("size", "size_bytes"))


def quality(frame: pd.DataFrame) -> tuple[str, pd.Series]:
    """What "better" means for a model: accuracy on real labels, lower perplexity for a
    generative model, else SQNR against fp32."""
    if "perplexity" in frame and frame["perplexity"].notna().any():
        return "perplexity", -frame["perplexity"].astype(float)
    if frame["accuracy"].notna().any():
        return "accuracy", frame["accuracy"].astype(float)
    return "SQNR", frame["sqnr_db"].astype(float)


def pareto_front(points: Sequence[tuple[float, float]]) -> list[bool]:
    """For (cost, quality) points: True where no other point is at least as cheap and as good
    and strictly better in one of the two."""
    if not len(points):
        return []
    cost, good = (np.array(values, dtype=float) for values in zip(*points, strict=True))
    # dominates[j, i]: point j is at least as cheap and as good as point i, and better in one
    dominates = (cost[:, None] <= cost) & (good[:, None] >= good) & ((cost[:, None] < cost) | (good[:, None] > good))
    return [not bool(column.any()) for column in dominates.T]


def pareto_marks(frame: pd.DataFrame) -> list[str | None]:
    """Per row: "lat", "size" or "lat size" when the variant is Pareto-optimal in quality vs
    p50 latency / vs .pte size among the same device's successful rows."""
    marks: list[list[str]] = [[] for _ in range(len(frame))]
    _, good = quality(frame)
    quality_known = good.notna().to_numpy()
    good_values = good.to_numpy(dtype=float, na_value=np.nan)
    ok = (frame["status"] == CellStatus.OK).to_numpy(dtype=bool)
    costs = [
        (label, pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=float, na_value=np.nan))
        for label, column in COSTS
    ]
    for positions in frame.groupby("device", sort=False).indices.values():
        for label, cost in costs:
            usable = positions[ok[positions] & quality_known[positions] & ~np.isnan(cost[positions])]
            points = list(zip(cost[usable], good_values[usable], strict=True))
            for position, optimal in zip(usable, pareto_front(points), strict=True):
                if optimal:
                    marks[position].append(label)
    return [" ".join(m) or None for m in marks]
