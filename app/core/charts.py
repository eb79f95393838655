"""Chart geometry for server-drawn inline SVG (no JavaScript, no CDN).

``chart(labels, series, kind)`` returns plain numbers: the plot box, y-axis ticks, a bar
rectangle or a polyline per series, and which x labels to print. The macro
``svg_chart`` in templates/_charts.html draws them; the numbers stay in fen, labels show
yuan. Shared by the admin reports and the promotion funnel (admin and distributor
centre), so it lives in core where every area can reach it. ``MOBILE`` is the smaller
canvas of a 375 px phone page (the text then stays readable once scaled).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from app.core.money import format_yuan

WIDTH = 960
HEIGHT = 260
LEFT = 70
RIGHT = 12
TOP = 12
BOTTOM = 30
PALETTE = ("#2f6fed", "#f0883e", "#2da44e", "#a371f7", "#d1242f", "#8c959f", "#bf8700")
MAX_X_LABELS = 12


@dataclass(frozen=True)
class Canvas:
    """The drawing size of a chart and its margins, in SVG units."""

    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT
    max_x_labels: int = MAX_X_LABELS


DESKTOP = Canvas()
MOBILE = Canvas(width=360, height=200, left=46, max_x_labels=7)


@dataclass
class Series:
    """One series: its label, values (fen or counts) and colour."""

    label: str
    values: list[int]
    color: str = ""
    bars: list[tuple[float, float, float, float]] = field(default_factory=list)
    points: str = ""


@dataclass
class Chart:
    """Everything the template needs to draw one chart."""

    kind: str
    width: int
    height: int
    series: list[Series]
    ticks: list[tuple[float, str]]  # (y, label)
    x_labels: list[tuple[float, str]]  # (x, label)
    plot: tuple[int, int, int, int]  # left, top, right, bottom


def _nice_max(value: int) -> int:
    """The smallest 1/2/5 × 10^n at or above ``value`` (at least 1)."""
    if value <= 0:
        return 1
    step = 1
    while True:
        for m in (1, 2, 5):
            if step * m >= value:
                return step * m
        step *= 10


def _nice_count_max(value: int) -> int:
    """The smallest 4/8/12/20 × 10^n at or above ``value``: counts split into four whole
    steps (0, 2, 4, 6, 8 rather than 0, 1, 2, 3, 5)."""
    step = 1
    while True:
        for m in (4, 8, 12, 20):
            if step * m >= value:
                return step * m
        step *= 10


def _tick_label(value: int, money: bool) -> str:
    if not money:
        return f"{value:,}"
    if value >= 1_000_000:  # ¥10,000 and up: 万 reads better than long digits
        return f"¥{value / 1_000_000:g}万"
    return format_yuan(value).removesuffix(".00")


def chart(
    labels: list[str],
    series: list[Series],
    kind: str = "bar",
    money: bool = True,
    canvas: Canvas = DESKTOP,
) -> Chart:
    """Lay out ``series`` over ``labels`` as grouped bars or lines on ``canvas``."""
    left = canvas.left
    right, bottom = canvas.width - RIGHT, canvas.height - BOTTOM
    plot_w, plot_h = right - left, bottom - TOP
    # At least 4 steps of a whole unit, so ticks never repeat (0, 0, 0, 1).
    highest = max([4 if not money else 400, *(v for s in series for v in s.values)])
    top_value = _nice_max(highest) if money else _nice_count_max(highest)
    n = max(len(labels), 1)
    slot = plot_w / n

    def y(value: int) -> float:
        return round(bottom - plot_h * max(value, 0) / top_value, 1)

    for i, s in enumerate(series):
        s.color = s.color or PALETTE[i % len(PALETTE)]
        if kind == "bar":
            width = slot * 0.8 / max(len(series), 1)
            s.bars = [
                (
                    round(left + slot * j + slot * 0.1 + width * i, 1),
                    y(v),
                    round(max(width - 1, 1), 1),
                    round(bottom - y(v), 1),
                )
                for j, v in enumerate(s.values)
            ]
        else:
            s.points = " ".join(
                f"{round(left + slot * (j + 0.5), 1)},{y(v)}" for j, v in enumerate(s.values)
            )
    ticks = [(y(top_value * k // 4), _tick_label(top_value * k // 4, money)) for k in range(5)]
    every = max(1, -(-n // canvas.max_x_labels))
    x_labels = [
        (round(left + slot * (j + 0.5), 1), label[5:] if len(label) == 10 else label)
        for j, label in enumerate(labels)
        if j % every == 0
    ]
    return Chart(
        kind, canvas.width, canvas.height, series, ticks, x_labels, (left, TOP, right, bottom)
    )
