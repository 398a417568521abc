"""Subscription history → billing periods with what each period owes (pure).

The history of a tenant is a list of rows (start, change, end), each effective on a day.
Rules (SPEC §3, and where it is silent, what this module decides):

- Periods run from the anchor; the first anchor is the subscription's start.
- A change that involves a yearly cycle (from or to yearly) and changes the plan or the cycle
  starts a new term on its day: that day becomes the new anchor, so the running period is cut
  there and a new period starts on it. Changing yearly → anything credits the unused days of
  the old year-long term in the period that starts on the change day.
- A change between monthly plans keeps the anchor; the period is pro-rated by days.
- A change of a plan's terms only (its prices or included amounts in the file) keeps the
  anchor and the term: monthly base is pro-rated, a yearly term is neither restarted nor
  credited.
- An end cuts the running period on its day; the monthly base of that period is pro-rated
  over the period's full (nominal) length.
- Several rows on the same day: the last one wins (a same-day correction).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from hosting.billing.periods import add_months, yearly_term_containing

MONTHLY, YEARLY = "monthly", "yearly"


@dataclass(frozen=True)
class Terms:
    """What a plan costs and includes, as recorded in the subscription history."""

    plan: str
    cycle: str
    price_monthly: Decimal
    price_yearly: Decimal
    storage_gb: int
    bandwidth_gb: int

    def same_plan(self, other: Terms) -> bool:
        return self.plan == other.plan and self.cycle == other.cycle


@dataclass(frozen=True)
class HistoryRow:
    subscription_id: str
    tenant: str
    seq: int
    effective: date
    event: str  # start | change | end
    terms: Terms | None  # None for `end`


@dataclass(frozen=True)
class Segment:
    """A stretch [start, end) of one subscription under one set of terms and one anchor."""

    subscription_id: str
    start: date
    end: date | None
    terms: Terms
    anchor: date

    def overlap_days(self, start: date, end: date) -> int:
        lo = max(start, self.start)
        hi = end if self.end is None else min(end, self.end)
        return max(0, (hi - lo).days)

    def covers(self, day: date) -> bool:
        return self.start <= day and (self.end is None or day < self.end)


@dataclass(frozen=True)
class Credit:
    """Unused days of a year-long term given back when the plan or cycle changes."""

    terms: Terms
    unused_days: int
    term_days: int
    term_start: date
    term_end: date


@dataclass(frozen=True)
class Period:
    tenant: str
    subscription_id: str
    start: date
    end: date  # exclusive; the invoice date
    nominal_end: date  # the next anchor day; differs from `end` when the period is cut
    monthly_portions: tuple[tuple[Terms, int], ...]  # (terms, days) under a monthly cycle
    yearly_charge: Terms | None  # the period starts a year-long term
    credits: tuple[Credit, ...]
    included: Terms  # the plan on the period's last day

    @property
    def days(self) -> int:
        """The period's full length in days (what monthly base is pro-rated over)."""
        return (self.nominal_end - self.start).days


@dataclass
class _Sub:
    subscription_id: str
    segments: list[Segment] = field(default_factory=list)
    credits: dict[date, Credit] = field(default_factory=dict)


def segments(rows: list[HistoryRow]) -> list[_Sub]:
    """The history rows of one tenant (in seq order) as segments per subscription."""
    subs: dict[str, _Sub] = {}
    by_sub: dict[str, list[list[HistoryRow]]] = {}
    for row in rows:
        groups = by_sub.setdefault(row.subscription_id, [])
        if groups and groups[-1][0].effective == row.effective:
            groups[-1].append(row)
        else:
            groups.append([row])
    for sub_id, groups in by_sub.items():
        sub = subs[sub_id] = _Sub(sub_id)
        current: Segment | None = None
        for group in groups:
            day, last = group[0].effective, group[-1]
            if current is None:
                if last.event == "end" or last.terms is None or sub.segments:
                    break  # started and ended the same day, or rows after an end
                current = Segment(sub_id, day, None, last.terms, day)
                continue
            if last.event == "end" or last.terms is None:
                sub.segments.append(_close(current, day))
                current = None
                continue
            new, old = last.terms, current.terms
            if new == old:
                continue
            anchor = current.anchor
            if not new.same_plan(old) and YEARLY in (new.cycle, old.cycle):
                anchor = day
                if old.cycle == YEARLY:
                    t_start, t_end = yearly_term_containing(current.anchor, _day_before(day))
                    unused = (t_end - day).days
                    if unused > 0:
                        sub.credits[day] = Credit(
                            old, unused, (t_end - t_start).days, t_start, t_end
                        )
            sub.segments.append(_close(current, day))
            current = Segment(sub_id, day, None, new, anchor)
        if current is not None:
            sub.segments.append(current)
        sub.segments = [s for s in sub.segments if s.end is None or s.end > s.start]
    return list(subs.values())


def _close(seg: Segment, day: date) -> Segment:
    return Segment(seg.subscription_id, seg.start, day, seg.terms, seg.anchor)


def _day_before(day: date) -> date:
    return date.fromordinal(day.toordinal() - 1)


def periods(tenant: str, rows: list[HistoryRow], until: date) -> list[Period]:
    """Every period of the tenant that starts before `until`, in time order."""
    out: list[Period] = []
    for sub in segments(rows):
        epochs: list[list[Segment]] = []
        for seg in sub.segments:
            if epochs and epochs[-1][-1].anchor == seg.anchor:
                epochs[-1].append(seg)
            else:
                epochs.append([seg])
        for epoch in epochs:
            anchor, epoch_end = epoch[0].anchor, epoch[-1].end
            k = 0
            while True:
                start, nominal_end = add_months(anchor, k), add_months(anchor, k + 1)
                if start >= until or (epoch_end is not None and start >= epoch_end):
                    break
                end = nominal_end if epoch_end is None else min(nominal_end, epoch_end)
                out.append(_period(tenant, sub, epoch, k, start, end, nominal_end))
                k += 1
    out.sort(key=lambda p: (p.start, p.end))
    return out


def _period(
    tenant: str,
    sub: _Sub,
    epoch: list[Segment],
    k: int,
    start: date,
    end: date,
    nominal_end: date,
) -> Period:
    portions: list[tuple[Terms, int]] = []
    yearly: Terms | None = None
    last_day = _day_before(end)
    included = epoch[-1].terms
    for seg in epoch:
        days = seg.overlap_days(start, end)
        if days and seg.terms.cycle == MONTHLY:
            portions.append((seg.terms, days))
        if seg.covers(start) and seg.terms.cycle == YEARLY and k % 12 == 0:
            yearly = seg.terms
        if seg.covers(last_day):
            included = seg.terms
    credit = sub.credits.get(start)
    return Period(
        tenant=tenant,
        subscription_id=sub.subscription_id,
        start=start,
        end=end,
        nominal_end=nominal_end,
        monthly_portions=tuple(portions),
        yearly_charge=yearly,
        credits=(credit,) if credit is not None else (),
        included=included,
    )


def current_segment(rows: list[HistoryRow]) -> Segment | None:
    """The open segment of the tenant's latest subscription (None when it has ended)."""
    subs = segments(rows)
    if not subs or not subs[-1].segments:
        return None
    last = subs[-1].segments[-1]
    return last if last.end is None else None
