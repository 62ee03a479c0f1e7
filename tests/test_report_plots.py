"""The report's figures are cropped to what they draw, also where it reaches past the figure's edge."""

from __future__ import annotations

import io

import pandas as pd
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image
from pocketbench.report import html, plots
from pocketbench.results.compare import latest_attempts
from pocketbench.results.store import load_run

from tests.conftest import DATA

CI_RUN = DATA / "ci_run"


# A text inside the figure, past its edge within the room drawn around it, and past that room
# (a gap between its words at the room's edge).
@pytest.mark.parametrize(("x", "text"), [(0.5, "inside"), (0.95, "past the edge"), (1.2, "on and on " * 3)])
def test_a_figure_is_cropped_to_what_it_draws(x, text):
    fig = Figure(figsize=(4, 3))
    fig.subplots().plot([0, 1], [0, 1])
    fig.text(x, 0.5, text, fontsize=10)
    png = Image.open(io.BytesIO(plots._png(fig)))
    box = fig.get_tightbbox(FigureCanvasAgg(fig).get_renderer()).padded(plots.PAD)
    # The measured box holds each text's whole line height; the drawn pixels, only its ink.
    assert abs(png.width - box.width * plots.DPI) <= 3
    assert abs(png.height - box.height * plots.DPI) <= 6


def test_a_figure_drawn_on_the_last_models_is_the_one_drawn_afresh():
    """A model whose figure is laid out as the previous model's is drawn on that figure: its PNG
    is the one drawn alone (other latencies, sizes and memory: other limits and ticks)."""
    frame, _, _ = load_run(str(CI_RUN), DATA)
    frame = latest_attempts(frame)
    other = frame.assign(
        model="other",
        latency_samples_ms=frame["latency_samples_ms"].map(lambda v: [7.3 * x for x in v]),
        latency_p50_ms=7.3 * frame["latency_p50_ms"],
        size_bytes=frame["size_bytes"][::-1].to_numpy() * 40,
        peak_rss_kb=3.1 * frame["peak_rss_kb"],
        accuracy=frame["accuracy"] * 0.5,
    )
    both = pd.concat([frame, other], ignore_index=True)
    memory = {**html.MEMORY_COLUMNS, **html.ENERGY_COLUMNS}
    for draw in (
        lambda rows: plots.latency_distributions(rows),
        lambda rows: plots.pareto(rows, html.PARETO_PANELS),
        lambda rows: plots.bars(rows, memory, "memory"),
    ):
        together = draw(both)
        assert len(together) == 2
        assert together[0] == draw(frame)[0]
        assert together[1] == draw(other)[0]
