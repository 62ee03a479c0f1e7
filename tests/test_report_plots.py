"""The report's figures are cropped to what they draw, also where it reaches past the figure's edge."""

from __future__ import annotations

import io

import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image
from pocketbench.report import plots


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
