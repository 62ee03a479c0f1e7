"""The report's figures, drawn with matplotlib (object API, no pyplot state) as PNG bytes.

Each function takes tidy rows and returns `(title, png)` pairs, or nothing when the data it
needs is absent (no accuracy, no energy column, a single run of history).
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd
from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import LineCollection, PolyCollection
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.transforms import Bbox
from PIL import Image

from pocketbench.results.cell_status import MEASURED, CellStatus

Plot = tuple[str, bytes]
CELL = ["model", "variant", "device", "status"]
DPI = 80  # sharp enough on a screen; a farm run's page holds dozens of figures
# Inches: room drawn around a figure; blank kept around what it draws; blank that must remain at
# the drawn room's edge (wider than a gap between words or legend entries) for nothing to be cut.
MARGIN, PAD, CLEAR = 2.0, 0.1, 0.3
WHITE = np.frombuffer(bytes([255] * 4), dtype=np.uint32)[0]  # an opaque white RGBA pixel
CURRENT, BASELINE, FRONT = "#1f77b4", "#aaaaaa", "#d62728"
# Variants told apart by colour (grey and red are taken by the baseline and the front).
PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22"]


def _png(fig: Figure) -> bytes:
    """The figure cropped to what it draws, drawn once: on a canvas with MARGIN inches of room on
    every side (a legend beside the last panel reaches past the figure's edge), cropped to the
    pixels drawn plus PAD. When something comes within CLEAR of the canvas's edge, the box is
    measured instead (get_tightbbox, which lays every text out: the cost of a second drawing).
    What these figures draw outside their axes starts beside them (labels, a legend at an axes'
    edge), never more than MARGIN past the figure's edge."""
    fig.set_dpi(DPI)
    width, height = fig.get_size_inches()
    canvas = Bbox([[-MARGIN, -MARGIN], [width + MARGIN, height + MARGIN]])
    raw = io.BytesIO()
    fig.savefig(raw, format="rgba", dpi=DPI, bbox_inches=canvas)
    columns, rows = int(canvas.width * DPI), int(canvas.height * DPI)  # as the Agg canvas sizes itself
    pixels = np.frombuffer(raw.getbuffer(), dtype=np.uint8)
    if pixels.size == rows * columns * 4:
        drawn = pixels.view(np.uint32).reshape(rows, columns) != WHITE  # a pixel as one number: fast
        pixels = pixels.reshape(rows, columns, 4)
        ys, xs = np.flatnonzero(drawn.any(axis=1)), np.flatnonzero(drawn.any(axis=0))
        clear = round(CLEAR * DPI)  # no ink this near the canvas's edge: nothing was cut there
        inside = len(ys) and min(ys[0], xs[0], rows - 1 - ys[-1], columns - 1 - xs[-1]) >= clear
        if inside:
            pad = round(PAD * DPI)
            crop = pixels[max(ys[0] - pad, 0) : ys[-1] + pad + 1, max(xs[0] - pad, 0) : xs[-1] + pad + 1, :3]
            buffer = io.BytesIO()
            Image.fromarray(np.ascontiguousarray(crop)).save(buffer, format="png", dpi=(DPI, DPI))
            return buffer.getvalue()
    box = fig.get_tightbbox(FigureCanvasAgg(fig).get_renderer()).padded(PAD)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, bbox_inches=box)
    return buffer.getvalue()


def _ok(frame: pd.DataFrame, columns: Sequence[str] | None = None) -> pd.DataFrame:
    """The measured rows; only `columns` (those present, and the cell's key) when given: a run's
    hundred-odd columns would be copied for every model's group."""
    if columns is None:
        return frame[frame["status"].isin(MEASURED)]
    kept = list(dict.fromkeys(c for c in [*CELL, *columns] if c in frame))
    return frame.loc[frame["status"].isin(MEASURED), kept]


def _samples(value: object) -> list[float]:
    """A cell's raw latency samples (none when it measured nothing)."""
    return [] if value is None or isinstance(value, float) else [float(v) for v in value]  # type: ignore[attr-defined]


def latency_distributions(frame: pd.DataFrame, baseline: pd.DataFrame | None = None) -> list[Plot]:
    """Per model: a box of the raw latency samples of each variant (baseline's beside it in grey);
    with several devices, the boxes grouped by device, each variant its colour."""
    plots = []
    measured = _ok(frame, ["latency_samples_ms"])
    measured = measured.loc[measured["latency_samples_ms"].map(lambda v: len(_samples(v)) > 0).astype(bool)]
    # Each cell's baseline samples: of the baseline's last measured row of that cell, looked up once.
    earlier = _ok(baseline, ["latency_samples_ms"]) if baseline is not None else None
    cells = ["model", "variant", "device", "latency_samples_ms"]
    baselines = {} if earlier is None else {tuple(r[:3]): r[3] for r in earlier[cells].itertuples(index=False)}
    kept = _Kept()
    for model, group in measured.groupby("model", sort=False):
        layout = _Layout(group)
        boxes: list[tuple[float, list[float], str]] = []
        for x, (variant, device, samples) in zip(layout.xs, group[cells[1:]].itertuples(index=False), strict=True):
            base = _samples(baselines.get((model, variant, device)))
            if base:
                boxes.append((x - 0.45, base, BASELINE))
            boxes.append((x + 0.45 if base else x, _samples(samples), layout.color(variant)))
        size = (min(1.6 + layout.width * len(group), 18.0), 3.6)

        def build(size: tuple[float, float] = size, layout: _Layout = layout) -> tuple[Figure, list[Axes]]:
            fig = Figure(figsize=size)
            ax = fig.subplots()
            layout.label(ax)
            ax.set_yscale("log")  # a few slow outliers must not flatten every box
            ax.set_ylabel("latency per inference (ms, log scale)")
            ax.grid(axis="y", alpha=0.3)
            return fig, [ax]

        _, (ax,) = kept.figure((size, layout.key), build)
        drawn = _draw_boxes(ax, boxes)
        grey = any(color == BASELINE for _, _, color in boxes)
        ax.set_title(f"{model}: latency samples" + (" (grey: baseline)" if grey else ""))
        plots.append((f"{model} latency distribution", kept.png(drawn)))
    return plots


class _Kept:
    """The last figure built, kept for the next model whose figure is built the same (its size,
    axes, ticks, labels and legend, named by `key`): building axes and their ticks costs about as
    much as drawing them, and a farm run's models share one layout. What a model draws on it is
    removed once its PNG is taken, and each axes' data limits start afresh, as a new axes' do."""

    def __init__(self) -> None:
        self.key: object = None
        self.built: tuple[Figure, list[Axes]] | None = None
        self.fresh = False  # the figure was just built: what is drawn once per figure is still to draw

    def figure(self, key: object, build: Callable[[], tuple[Figure, list[Axes]]]) -> tuple[Figure, list[Axes]]:
        self.fresh = self.built is None or key != self.key
        if self.built is None or self.fresh:
            self.key, self.built = key, build()
            return self.built
        for ax in self.built[1]:
            ax.dataLim.set_points(Bbox.null().get_points())
            ax.ignore_existing_data_limits = True
            ax.set_autoscale_on(True)
        return self.built

    def png(self, drawn: Sequence[Artist]) -> bytes:
        """The figure's PNG; then the model's own artists (`drawn`) are taken off it."""
        assert self.built is not None
        png = _png(self.built[0])
        for artist in drawn:
            artist.remove()
        return png


class _Layout:
    """Where a model's cells go on a categorical x axis: one place per variant on one device; on
    several devices, the variants side by side within each device's group, told apart by colour
    (a tick per device and a legend of variants, not a label per cell)."""

    def __init__(self, group: pd.DataFrame) -> None:
        variants, devices = list(group["variant"].astype(str)), list(group["device"].astype(str))
        self.variants = list(dict.fromkeys(variants))
        self.devices = list(dict.fromkeys(devices))
        self.several = len(self.devices) > 1
        step = 2.2  # room for a baseline box beside each
        if self.several:
            slot = {v: i for i, v in enumerate(self.variants)}
            per = step * len(self.variants) + 1.5
            place = {d: i * per for i, d in enumerate(self.devices)}
            self.xs = [place[d] + step * slot[v] for v, d in zip(variants, devices, strict=True)]
            self.ticks = [(place[d] + step * (len(self.variants) - 1) / 2, d) for d in self.devices]
        else:
            self.xs = [step * i for i in range(len(variants))]
            self.ticks = list(zip(self.xs, variants, strict=True))
        self.width = 0.35 if self.several else 1.3

    @property
    def key(self) -> tuple[object, ...]:
        """What decides the axes' ticks, labels, colours and legend."""
        return (tuple(self.xs), tuple(self.ticks), tuple(self.variants), self.several)

    def color(self, variant: str) -> str:
        return PALETTE[self.variants.index(variant) % len(PALETTE)] if self.several else CURRENT

    def label(self, ax: Axes, legend: bool = True) -> None:
        ax.set_xticks([x for x, _ in self.ticks], [t for _, t in self.ticks], fontsize=8 if self.several else 10)
        if self.several:
            ax.tick_params(axis="x", rotation=30)
        if self.several and legend:
            handles = [Patch(facecolor=self.color(v), edgecolor="black", label=v) for v in self.variants]
            ax.legend(handles=handles, fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))


def _draw_boxes(ax: Axes, boxes: list[tuple[float, list[float], str]], width: float = 0.8) -> list[Artist]:
    """Tukey boxes at x (quartiles, median, whiskers to the furthest sample within 1.5 IQR,
    samples beyond as outliers), one PolyCollection, one LineCollection and one scatter (returned)."""
    polygons, colors, lines, outliers = [], [], [], []
    half = width / 2
    for x, samples, color in boxes:
        data = np.asarray(samples, dtype=float)
        q1, median, q3 = np.percentile(data, [25, 50, 75])
        reach = 1.5 * (q3 - q1)
        inside = data[(data >= q1 - reach) & (data <= q3 + reach)]
        low, high = (inside.min(), inside.max()) if inside.size else (q1, q3)
        polygons.append([(x - half, q1), (x + half, q1), (x + half, q3), (x - half, q3)])
        colors.append(color)
        lines += [[(x - half, median), (x + half, median)], [(x, q1), (x, low)], [(x, q3), (x, high)]]
        lines += [[(x - half / 2, low), (x + half / 2, low)], [(x - half / 2, high), (x + half / 2, high)]]
        outliers += [(x, v) for v in data[(data < low) | (data > high)]]
    drawn: list[Artist] = [
        ax.add_collection(PolyCollection(polygons, facecolors=colors, edgecolors="black", linewidths=0.8, zorder=2)),
        ax.add_collection(LineCollection(lines, colors="black", linewidths=0.8, zorder=3)),
    ]
    if outliers:
        xs, ys = zip(*outliers, strict=True)
        drawn.append(ax.scatter(xs, ys, s=9, facecolors="none", edgecolors="black", linewidths=0.6, zorder=3))
    ax.autoscale_view()
    return drawn


# A Pareto panel: (column, axis label, higher is better, scale).
Panel = tuple[str, str, bool, float]


def pareto(frame: pd.DataFrame, panels: list[Panel]) -> list[Plot]:
    """Per model, one figure with a panel per quantity that model has: the column (× scale)
    against p50 latency, the Pareto front (variants no other variant beats on both) ringed and
    joined in red."""
    plots = []
    ok = _ok(frame, ["latency_p50_ms", *(p[0] for p in panels)]).dropna(subset=["latency_p50_ms"])
    kept = _Kept()
    for model, group in ok.groupby("model", sort=False):
        present = [p for p in panels if p[0] in group and group[p[0]].notna().any()]
        if not present:
            continue
        layout = _Layout(group)
        # The legend names the last panel's variants (several devices) and the front.
        named = group.dropna(subset=[present[-1][0]])["variant"].astype(str) if layout.several else []
        key = (tuple(present), layout.key, tuple(dict.fromkeys(named)))

        def build(present: list[Panel] = present) -> tuple[Figure, list[Axes]]:
            fig = Figure(figsize=(0.4 + 5.2 * len(present), 3.6))
            axes = list(fig.subplots(1, len(present), squeeze=False, gridspec_kw={"wspace": 0.45})[0])
            for ax, (_, label, _, _) in zip(axes, present, strict=True):
                ax.set_xlabel("p50 latency (ms)")
                ax.set_ylabel(label)
                ax.set_title(f"{label} vs latency", fontsize=10)
                ax.grid(alpha=0.3)
            return fig, axes

        fig, axes = kept.figure(key, build)
        drawn: list[Artist] = []
        for ax, (column, _, higher_is_better, scale) in zip(axes, present, strict=True):
            drawn += _pareto_panel(ax, group.dropna(subset=[column]), column, higher_is_better, scale, layout)
        if kept.fresh:  # beside the last panel: "best" tests every point against every spot, slow with dozens of cells
            axes[-1].legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8)
        quantities = " and ".join(p[1] for p in present)
        fig.suptitle(f"{model}: {quantities} vs latency")
        plots.append((f"{model} {quantities} vs latency", kept.png(drawn)))
    return plots


def _pareto_panel(
    ax: Axes, group: pd.DataFrame, column: str, higher_is_better: bool, scale: float, layout: _Layout
) -> list[Artist]:
    """One quantity against p50 latency, the front joined in red: the artists drawn."""
    ys = group[column].astype(float) * scale
    drawn: list[Artist] = []
    if layout.several:  # a point per variant and device: colours and a legend, not a label each
        for variant, cells in group.groupby(group["variant"].astype(str), sort=False):
            color = layout.color(variant)
            drawn.append(ax.scatter(cells["latency_p50_ms"], ys[cells.index], color=color, zorder=3, label=variant))
    else:
        drawn.append(ax.scatter(group["latency_p50_ms"], ys, color=CURRENT, zorder=3))
        for variant, x, y in zip(group["variant"], group["latency_p50_ms"], ys, strict=True):
            drawn.append(ax.annotate(str(variant), (x, y), textcoords="offset points", xytext=(4, 4), fontsize=8))
    front = pareto_front(group, column, higher_is_better)
    drawn += ax.plot(
        front["latency_p50_ms"],
        front[column].astype(float) * scale,
        color=FRONT,
        drawstyle="steps-post",
        marker="o",
        markersize=11,
        markerfacecolor="none",
        label="Pareto front",
    )
    return drawn


def pareto_front(frame: pd.DataFrame, column: str, higher_is_better: bool) -> pd.DataFrame:
    """Rows not dominated by a faster-or-equal row that is at least as good in `column`."""
    ordered = frame.sort_values(["latency_p50_ms", column], ascending=[True, not higher_is_better])
    keep, best = [], None
    for index, value in ordered[column].items():
        if best is None or (value > best if higher_is_better else value < best):
            keep.append(index)
            best = value
    return ordered.loc[keep]


def bars(frame: pd.DataFrame, columns: dict[str, tuple[str, float]], title: str) -> list[Plot]:
    """Per model: one bar chart per present column (name → (axis label, scale)), side by side,
    each on its own scale (peak RSS and planned memory differ by orders of magnitude); with several
    devices, the variants' bars grouped by device."""
    ok = _ok(frame, list(columns))
    present = {c: spec for c, spec in columns.items() if c in ok and ok[c].notna().any()}
    plots = []
    kept = _Kept()
    for model, group in ok.groupby("model", sort=False):
        if not present:
            break
        layout = _Layout(group)
        width = min(0.6 + (1.2 + (0.3 if layout.several else 0.9) * len(group)) * len(present), 18.0)

        def build(width: float = width, layout: _Layout = layout) -> tuple[Figure, list[Axes]]:
            fig = Figure(figsize=(width, 3.4))
            axes = list(fig.subplots(1, len(present), squeeze=False)[0])
            for ax, (column, (label, _)) in zip(axes, present.items(), strict=True):
                ax.set_ylabel(label)
                ax.set_title(column, fontsize=9)
                layout.label(ax, legend=ax is axes[-1])
                ax.tick_params(axis="x", labelsize=8, rotation=20 if not layout.several else 30)
                ax.grid(axis="y", alpha=0.3)
            return fig, axes

        fig, axes = kept.figure((width, layout.key), build)
        colors = [layout.color(v) for v in group["variant"].astype(str)]
        drawn: list[Artist] = []
        for ax, (column, (_, scale)) in zip(axes, present.items(), strict=True):
            heights = group[column].astype(float).to_numpy() * scale
            shown = [(x, h, c) for x, h, c in zip(layout.xs, heights, colors, strict=True) if not np.isnan(h)]
            # One collection, not an artist per bar: a farm run's model has dozens of cells.
            bars = [[(x - 0.9, 0), (x + 0.9, 0), (x + 0.9, h), (x - 0.9, h)] for x, h, _ in shown]
            drawn.append(ax.add_collection(PolyCollection(bars, facecolors=[c for _, _, c in shown])))
            ax.autoscale_view()
            ax.set_ylim(bottom=0)
        fig.suptitle(f"{model}: {title}")
        plots.append((f"{model} {title}", kept.png(drawn)))
    return plots


def search(frame: pd.DataFrame) -> list[Plot]:
    """A search run (`pocketbench tune`): every measured trial (short protocol) as accuracy vs
    p50, with the front and the baselines measured again with the full protocol drawn over
    them, the front joined in red."""
    if "tune_phase" not in frame:
        return []
    plots = []
    ok = _ok(frame).dropna(subset=["accuracy", "latency_p50_ms"])
    for model, group in ok.groupby("model", sort=False):
        trials = group[group["tune_phase"] == "trial"]
        again = group[group["tune_phase"] == "front"].drop_duplicates(["variant", "device"], keep="last")
        if trials.empty:
            continue
        fig = Figure(figsize=(6.4, 4.2))
        ax = fig.subplots()
        ax.scatter(
            trials["latency_p50_ms"],
            100 * trials["accuracy"],
            color=CURRENT,
            alpha=0.5,
            zorder=2,
            label=f"trials ({len(trials)}, short protocol)",
        )
        front = again[again["variant"].astype(str).str.startswith("tuned-")].sort_values("latency_p50_ms")
        baselines = again[~again.index.isin(front.index)]
        ax.plot(
            front["latency_p50_ms"],
            100 * front["accuracy"],
            color=FRONT,
            marker="o",
            markersize=9,
            drawstyle="steps-post",
            zorder=4,
            label="front, re-measured",
        )
        ax.scatter(
            baselines["latency_p50_ms"],
            100 * baselines["accuracy"],
            color=BASELINE,
            marker="s",
            s=60,
            zorder=3,
            label="baselines, re-measured",
        )
        for _, row in again.iterrows():
            ax.annotate(
                str(row["variant"]),
                (row["latency_p50_ms"], 100 * row["accuracy"]),
                textcoords="offset points",
                xytext=(4, 4),
                fontsize=7,
            )
        pruned = int(
            (frame[(frame["model"] == model) & (frame["tune_phase"] == "trial")]["status"] == CellStatus.PRUNED).sum()
        )
        ax.set_xlabel("p50 latency (ms)")
        ax.set_ylabel("accuracy (%)")
        ax.set_title(f"{model}: search ({pruned} trials pruned before measuring)")
        ax.grid(alpha=0.3)
        ax.legend(loc="best", fontsize=8)
        plots.append((f"{model} search: trials, front and baselines", _png(fig)))
    return plots
