"""Line charts laid out as SVG coordinates, in pure Python.

The layout is computed here and drawn by a template, so every label still passes through
Jinja's autoescaping: a deployment called `<script>` can name a line but never inject markup.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

from hosting.reports.models import Chart, ChartLine, Tick

WIDTH, HEIGHT = 640, 220
LEFT, RIGHT, TOP, BOTTOM = 64, 28, 28, 36

Point = tuple[datetime, float]
BYTE_UNITS = ("B", "KB", "MB", "GB", "TB")


def byte_scale(max_value: float) -> tuple[float, str]:
    """The 1024-based unit that keeps the largest value under 1024 (product's formatBytes)."""
    divisor, unit = 1.0, BYTE_UNITS[0]
    for name in BYTE_UNITS:
        unit = name
        if max_value < divisor * 1024 or name == BYTE_UNITS[-1]:
            break
        divisor *= 1024
    return divisor, unit


def nice_step(span: float, target: int = 4) -> float:
    """1, 2 or 5 × 10^k so that `span` takes about `target` steps."""
    if span <= 0:
        return 1.0
    raw = span / target
    power = 10 ** math.floor(math.log10(raw))
    for mult in (1, 2, 2.5, 5, 10):
        if raw <= mult * power:
            return float(mult * power)
    return float(10 * power)


def fmt_number(value: float, step: float) -> str:
    if step >= 1 and abs(value - round(value)) < 1e-9:
        return f"{round(value):,}"
    decimals = max(0, min(4, -math.floor(math.log10(step)))) if step > 0 else 2
    if step * 10**decimals % 1:
        decimals += 1
    return f"{value:,.{decimals}f}"


def time_ticks(start: datetime, end: datetime) -> list[tuple[datetime, str]]:
    span = end - start
    if span >= timedelta(days=2):
        days = max(1, math.ceil(span.days / 8))
        first = start.replace(hour=0, minute=0, second=0, microsecond=0)
        if first < start:
            first += timedelta(days=1)
        out, t = [], first
        while t <= end:
            out.append((t, t.strftime("%b %-d")))
            t += timedelta(days=days)
        return out
    hours = max(1, math.ceil(span.total_seconds() / 3600 / 8))
    first = start.replace(minute=0, second=0, microsecond=0)
    if first < start:
        first += timedelta(hours=1)
    out, t = [], first
    while t <= end:
        out.append((t, t.strftime("%H:%M")))
        t += timedelta(hours=hours)
    return out


def line_chart(
    title: str,
    series: Sequence[tuple[str, Sequence[Point]]],
    start: datetime,
    end: datetime,
    *,
    unit: str,
    scale: float = 1.0,
    limit: float | None = None,
    limit_label: str = "",
    value_label: Callable[[float], str] | None = None,
    summary: str = "",
) -> Chart:
    """Lay out one chart. Values are divided by `scale` (e.g. 1024² for MB); `unit` names
    the result and is printed on the y axis."""
    pw, ph = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    values = [v / scale for _, pts in series for _, v in pts]
    top_value = max([*values, (limit / scale) if limit is not None else 0.0, 0.0])
    step = nice_step(top_value) if top_value > 0 else 1.0
    y_max = step * max(1, math.ceil(top_value / step - 1e-9)) if top_value > 0 else 4.0
    if top_value <= 0:
        step = 1.0
    total_s = max((end - start).total_seconds(), 1.0)

    def x_of(t: datetime) -> float:
        return LEFT + pw * min(max((t - start).total_seconds() / total_s, 0.0), 1.0)

    def y_of(v: float) -> float:
        return TOP + ph - ph * min(max(v / y_max, 0.0), 1.0)

    y_ticks = []
    v = 0.0
    while v <= y_max + 1e-9:
        y_ticks.append(Tick(round(y_of(v), 1), fmt_number(v, step)))
        v += step
    x_ticks = tuple(Tick(round(x_of(t), 1), label) for t, label in time_ticks(start, end))
    lines = []
    for i, (name, pts) in enumerate(series):
        if not pts:
            continue
        coords = " ".join(f"{x_of(t):.1f},{y_of(val / scale):.1f}" for t, val in pts)
        last = pts[-1][1]
        label = value_label(last) if value_label else f"{last / scale:,.1f} {unit}"
        lines.append(ChartLine(name, coords, f"s{i % 6}", label))
    return Chart(
        title=title,
        unit=unit,
        width=WIDTH,
        height=HEIGHT,
        left=LEFT,
        top=TOP,
        plot_width=pw,
        plot_height=ph,
        x_ticks=x_ticks,
        y_ticks=tuple(y_ticks),
        lines=tuple(lines),
        limit_y=round(y_of(limit / scale), 1) if limit is not None else None,
        limit_label=limit_label,
        empty=not lines,
        summary=summary,
    )
