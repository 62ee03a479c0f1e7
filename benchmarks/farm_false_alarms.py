"""How often the farm's regression verdict fires on noise alone, and whether it catches a 20 %
slowdown, over synthetic nightly histories (the verdict code is the real one).

Each history: 20 nights of one cell; per night a level drawn around 10 ms with a night-to-night
wander (1 % or 1.5 %), and 40 samples with 5 % noise around that level. Every night is judged
against the nights before it, as the farm does.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from _results_md import write_section
from pocketbench.farm.matrix import DEFAULT_THRESHOLDS
from pocketbench.farm.regress import IMPROVEMENT, REGRESSION, verdicts

HISTORIES, NIGHTS, SAMPLES = 40, 20, 40


def history(rng: np.random.Generator, wander: float, last_factor: float = 1.0) -> pd.DataFrame:
    rows = []
    for night in range(NIGHTS):
        level = 10.0 * rng.normal(1, wander) * (last_factor if night == NIGHTS - 1 else 1.0)
        samples = rng.normal(level, level * 0.05, SAMPLES)
        rows.append(
            {
                "run_id": f"n{night:02d}",
                "started_at": f"2026-11-{night + 1:02d}T02:00:00+00:00",
                "device": "phone",
                "model": "m",
                "variant": "int8",
                "status": "ok",
                "latency_p50_ms": float(np.median(samples)),
                "latency_samples_ms": list(samples),
            }
        )
    return pd.DataFrame(rows)


def judged(frame: pd.DataFrame, run_id: str) -> str:
    table = verdicts(frame, run_id, DEFAULT_THRESHOLDS)
    return table.loc[table["metric"] == "latency_p50_ms", "verdict"].iloc[0]


def main() -> None:
    lines = [
        "| night-to-night wander | comparisons | false alarms | rate | 20 % slowdown on night 20 caught |",
        "|---|---|---|---|---|",
    ]
    for wander in (0.01, 0.015):
        rng = np.random.default_rng(7)
        alarms = comparisons = caught = 0
        for _ in range(HISTORIES):
            frame = history(rng, wander)
            for night in range(1, NIGHTS):
                comparisons += 1
                alarms += judged(frame, f"n{night:02d}") in (REGRESSION, IMPROVEMENT)
            slow = history(rng, wander, last_factor=1.2)
            caught += judged(slow, f"n{NIGHTS - 1:02d}") == REGRESSION
        lines.append(f"| {wander:.1%} | {comparisons} | {alarms} | {alarms / comparisons:.2%} | {caught}/{HISTORIES} |")
    body = (
        f"{HISTORIES} synthetic histories of {NIGHTS} nights per row (5 % sample noise, {SAMPLES} samples a night), "
        "each night judged against the nights before it with the default thresholds (5 %, alpha 0.01).\n\n"
        + "\n".join(lines)
    )
    write_section("farm_false_alarms", "Farm regression verdicts: false alarms on noise, a 20 % slowdown", body)
    print(body)


if __name__ == "__main__":
    main()
