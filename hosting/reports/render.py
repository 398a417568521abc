"""Renders the view models to self-contained HTML with Jinja2 (autoescaping always on)."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from functools import cache

import jinja2

from hosting.reports.models import InvoiceView, PlatformReport, UsageReport
from hosting.reports.sources import fmt_bytes

CENT = Decimal("0.01")


def money(value: Decimal) -> str:
    return f"{value.quantize(CENT, rounding=ROUND_HALF_UP):,}"


def quantity(value: Decimal) -> str:
    """Whole numbers plainly, fractions with up to four decimals (e.g. 2.5 GB, 0.4667 year)."""
    if value == value.to_integral_value():
        return f"{value:,.0f}"
    text = f"{value.quantize(Decimal('0.0001'), rounding=ROUND_HALF_UP):,}"
    return text.rstrip("0").rstrip(".")


def rate(value: Decimal) -> str:
    """A tax rate in percent as written: 19, 19.5 (stored with four decimals)."""
    text = f"{value.normalize():f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def fmt_date(value: date) -> str:
    return value.strftime("%Y-%m-%d")


def last_day(end: date) -> date:
    """Periods are stored [start, end); people read the last day included."""
    return end - timedelta(days=1)


def fmt_datetime(value: datetime) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC")


def pct(used: float, cap: float) -> str:
    return f"{100 * used / cap:.0f}%" if cap else "—"


def level(used: float, cap: float) -> str:
    if not cap:
        return ""
    return "bad" if used >= cap else "warn" if used >= 0.9 * cap else ""


def width(used: float, cap: float) -> str:
    return f"{min(100.0, 100 * used / cap):.1f}" if cap else "0"


@cache
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("hosting.reports", "templates"),
        autoescape=True,  # every template, whatever its name: tenant strings are untrusted
        undefined=jinja2.StrictUndefined,
        trim_blocks=False,
        lstrip_blocks=False,
    )
    env.filters.update(
        money=money,
        qty=quantity,
        d=fmt_date,
        last_day=last_day,
        dt=fmt_datetime,
        bytes=fmt_bytes,
        thousands=lambda n: f"{n:,}",
        rate=rate,
    )
    env.globals.update(pct=pct, level=level, width=width)
    return env


def render_invoice(invoice: InvoiceView) -> str:
    return environment().get_template("invoice.html.j2").render(inv=invoice)


def render_usage(report: UsageReport) -> str:
    return environment().get_template("usage.html.j2").render(r=report)


def render_platform(report: PlatformReport) -> str:
    return environment().get_template("platform.html.j2").render(r=report)
