"""Chart layout: readable ticks and units, points inside the plot, the limit where it
belongs. Expected labels are what a person would write on the axes."""

from __future__ import annotations

from datetime import datetime, timedelta

from hosting.reports import charts

GIB = 2**30
START, END = datetime(2026, 11, 3), datetime(2026, 11, 21)


def test_byte_units_are_1024_based() -> None:
    assert charts.byte_scale(500) == (1.0, "B")
    assert charts.byte_scale(1536) == (1024.0, "KB")
    assert charts.byte_scale(1.5 * GIB) == (float(GIB), "GB")


def test_axes_of_a_storage_chart() -> None:
    pts = [(START + timedelta(days=d), (0.5 + d / 18) * GIB) for d in range(19)]
    chart = charts.line_chart(
        "Storage", [("total", pts)], START, END, unit="GB", scale=GIB, limit=1.0 * GIB
    )
    assert [t.label for t in chart.y_ticks] == ["0.0", "0.5", "1.0", "1.5"]
    # 18 days: a label every third day, at midnight.
    assert [t.label for t in chart.x_ticks] == [
        "Nov 3", "Nov 6", "Nov 9", "Nov 12", "Nov 15", "Nov 18", "Nov 21",
    ]  # fmt: skip
    # The limit (1.0 of a 1.5 axis) is a third of the way down the plot.
    assert chart.limit_y == round(chart.top + chart.plot_height / 3, 1)
    xs, ys = zip(*(map(float, p.split(",")) for p in chart.lines[0].points.split()), strict=True)
    assert min(xs) == chart.left and max(xs) == chart.left + chart.plot_width
    assert all(chart.top <= y <= chart.top + chart.plot_height for y in ys)
    assert chart.lines[0].last_label == "1.5 GB"


def test_hourly_ticks_for_a_short_period_and_empty_chart() -> None:
    chart = charts.line_chart("CPU", [("x", [])], START, START + timedelta(hours=6), unit="%")
    assert chart.empty and chart.lines == ()
    assert [t.label for t in chart.x_ticks] == [f"{h:02d}:00" for h in range(7)]
    assert [t.label for t in chart.y_ticks] == ["0", "1", "2", "3", "4"]
