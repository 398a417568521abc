"""View models: the plain data each report template renders.

The renderer depends only on these, not on billing's or metering's types, so a report can be
built (and tested) from any source; adapters in `sources.py` fill them from the store.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal


@dataclass(frozen=True)
class Party:
    """Seller or customer on an invoice."""

    name: str
    email: str | None = None
    domain: str | None = None
    reference: str | None = None  # the tenant id, shown as "customer id"
    address: str = ""  # several lines
    tax_id: str = ""


@dataclass(frozen=True)
class InvoiceLine:
    kind: str  # base | credit | storage | bandwidth
    description: str
    quantity: Decimal
    unit: str  # "month", "year", "GB", "days"
    unit_price: Decimal
    amount: Decimal


@dataclass(frozen=True)
class CreditNoteView:
    number: str
    issue_date: date
    reason: str
    amount: Decimal  # tax included, positive: what it takes off the invoice


@dataclass(frozen=True)
class InvoiceView:
    number: str
    seller: Party
    customer: Party
    issue_date: date
    period_start: date
    period_end: date
    status: str
    currency: str
    lines: tuple[InvoiceLine, ...]
    subtotal: Decimal
    total: Decimal
    plan: str | None = None
    notes: tuple[str, ...] = ()
    # The legal document's parts (issue 15); a projection or an older view has none of them.
    due_date: date | None = None
    tax_rate: Decimal | None = None  # percent; None: no tax line
    tax: Decimal | None = None
    credit_notes: tuple[CreditNoteView, ...] = ()
    amount_due: Decimal | None = None
    footer: str = ""


@dataclass(frozen=True)
class Tick:
    pos: float
    label: str


@dataclass(frozen=True)
class ChartLine:
    name: str
    points: str  # SVG polyline points "x,y x,y …"
    css: str  # a class from the stylesheet (s0…s5, limit)
    last_label: str = ""


@dataclass(frozen=True)
class Chart:
    """A line chart already laid out in SVG user units; the template only draws it."""

    title: str
    unit: str
    width: int
    height: int
    left: int
    top: int
    plot_width: int
    plot_height: int
    x_ticks: tuple[Tick, ...]
    y_ticks: tuple[Tick, ...]
    lines: tuple[ChartLine, ...]
    limit_y: float | None = None
    limit_label: str = ""
    empty: bool = False
    summary: str = ""  # one line in words: what a screen reader or a printout without colour says


@dataclass(frozen=True)
class DeploymentUsage:
    name: str
    type: str
    status: str
    health: str
    charts: tuple[Chart, ...]
    requests: int
    errors: int
    bandwidth_in: int
    bandwidth_out: int
    avg_cpu: float | None
    peak_memory: int | None
    samples: int


@dataclass(frozen=True)
class StorageRow:
    storage_type: str
    size_bytes: int
    share: float  # 0..1 of the tenant's total


@dataclass(frozen=True)
class HealthSegment:
    start_pct: float
    width_pct: float
    status: str  # healthy | unhealthy | unknown
    label: str


@dataclass(frozen=True)
class HealthTrack:
    deployment: str
    segments: tuple[HealthSegment, ...]
    checks: int
    failures: int


@dataclass(frozen=True)
class AlertView:
    time: datetime | None
    level: str  # "90%" | "100%" | other text
    subject: str
    message: str


@dataclass(frozen=True)
class Tip:
    title: str
    text: str


@dataclass(frozen=True)
class RestoreDrillView:
    """A database's newest restore drill (hosting.backups.drills), or none yet."""

    deployment: str
    state: str  # ok, failed, never
    text: str


@dataclass(frozen=True)
class ScaleEventView:
    """One change the autoscaler made to a deployment's replicas in the period."""

    deployment: str
    at: datetime
    from_replicas: int
    to_replicas: int
    reason: str


@dataclass(frozen=True)
class UsageReport:
    platform: str
    tenant_id: str
    tenant_name: str
    tenant_email: str
    plan: str
    billing_cycle: str
    period_start: date
    period_end: date
    as_of: date
    generated_at: datetime
    deployments: tuple[DeploymentUsage, ...]
    storage_now: tuple[StorageRow, ...]
    storage_total: int
    storage_limit: int
    storage_chart: Chart
    bandwidth_out_total: int
    bandwidth_limit: int
    health: tuple[HealthTrack, ...]
    health_available: bool
    alerts: tuple[AlertView, ...]
    projected: InvoiceView | None
    projected_note: str
    tips: tuple[Tip, ...]
    restore_drills: tuple[RestoreDrillView, ...] = ()
    scale_events: tuple[ScaleEventView, ...] = ()


@dataclass(frozen=True)
class PlanRevenue:
    plan: str
    tenants: int
    monthly_value: Decimal  # recurring value per month (yearly price ÷ 12)
    invoiced: Decimal
    invoices: int


@dataclass(frozen=True)
class LimitRow:
    tenant_id: str
    tenant_name: str
    plan: str
    what: str  # "storage", "bandwidth", "websites", …
    used: str
    limit: str
    percent: float
    level: str  # "near" | "over"


@dataclass(frozen=True)
class ConsumerRow:
    tenant_id: str
    tenant_name: str
    plan: str
    storage_bytes: int
    bandwidth_out: int
    requests: int
    cpu_hours: float


@dataclass(frozen=True)
class SuspendedRow:
    """A tenant suspended for an unpaid invoice on the report's day (issue 15)."""

    tenant_id: str
    tenant_name: str
    since: date
    invoice_number: str
    amount: Decimal
    reminders: int


@dataclass(frozen=True)
class PlatformReport:
    platform: str
    domain: str
    as_of: date
    window_start: date
    generated_at: datetime
    currency: str
    revenue: tuple[PlanRevenue, ...]
    invoiced_total: Decimal
    monthly_total: Decimal
    invoice_status: tuple[tuple[str, int, Decimal], ...]
    limits: tuple[LimitRow, ...]
    consumers: tuple[ConsumerRow, ...]
    tenants: int
    deployments: int
    notes: tuple[str, ...] = field(default=())
    suspended: tuple[SuspendedRow, ...] = field(default=())
