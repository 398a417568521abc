"""Verification state in the store: pending → verifying → verified, or failed with a reason.

The DNS queries run with the store closed (DuckDB allows one writer per file), so a check
is recorded in two short transactions: `verifying` before, the result after. A process that
dies in between leaves `verifying`, which the next re-check treats as pending once stale.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import dns.resolver
import duckdb

from hosting.domains.dnscheck import DEFAULT_TIMEOUT, CheckResult, check, make_resolver
from hosting.domains.records import CustomDomain, custom_domains, find
from hosting.spec.models import Spec
from hosting.store import connect, transaction

PENDING, VERIFYING, VERIFIED, FAILED = "pending", "verifying", "verified", "failed"
RECHECK_INTERVAL = timedelta(minutes=5)


@dataclass(frozen=True)
class DomainState:
    domain: str
    tenant: str
    deployment: str
    state: str
    reason: str | None
    added_at: datetime
    checked_at: datetime | None
    verified_at: datetime | None


def _naive(t: datetime) -> datetime:
    """The store keeps naive UTC."""
    return t.astimezone(UTC).replace(tzinfo=None) if t.tzinfo else t


def _aware(t: datetime | None) -> datetime | None:
    return t.replace(tzinfo=UTC) if t is not None and t.tzinfo is None else t


def _utcnow(now: datetime | None) -> datetime:
    return (now or datetime.now(UTC)).astimezone(UTC)


def _load(conn: duckdb.DuckDBPyConnection) -> dict[str, DomainState]:
    rows = conn.execute(
        "SELECT domain, tenant, deployment, state, reason, added_at, checked_at, verified_at"
        " FROM domains"
    ).fetchall()
    out = {}
    for d, t, dep, state, reason, added, checked, verified in rows:
        added_at = _aware(added)
        assert added_at is not None
        out[d] = DomainState(d, t, dep, state, reason, added_at, _aware(checked), _aware(verified))
    return out


def sync(conn: duckdb.DuckDBPyConnection, spec: Spec, now: datetime) -> dict[str, DomainState]:
    """Add the file's new domains as pending; reset a domain that moved to another deployment
    (its verification proved nothing about the new owner's records). Rows of domains gone
    from the file stay as history and are ignored."""
    known = _load(conn)
    ts = _naive(now)
    new: list[list[Any]] = []
    moved: list[list[Any]] = []
    for cd in custom_domains(spec):
        row = known.get(cd.domain)
        if row is None:
            new.append([cd.domain, cd.tenant, cd.deployment, PENDING, ts, ts])
        elif (row.tenant, row.deployment) != (cd.tenant, cd.deployment):
            reason = f"moved from {row.tenant}/{row.deployment}: verify again"
            moved.append([cd.tenant, cd.deployment, PENDING, reason, ts, ts, cd.domain])
    if new:
        conn.executemany(
            "INSERT INTO domains (domain, tenant, deployment, state, added_at, updated_at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            new,
        )
    if moved:
        conn.executemany(
            "UPDATE domains SET tenant = ?, deployment = ?, state = ?, reason = ?,"
            " added_at = ?, updated_at = ?, checked_at = NULL, verified_at = NULL"
            " WHERE domain = ?",
            moved,
        )
    return _load(conn) if new or moved else known


def _next_state(previous: str, result: CheckResult) -> str:
    if result.ok:
        return VERIFIED
    if result.transient and previous == VERIFIED:
        # A DNS outage says nothing about the records: keep serving the domain.
        return VERIFIED
    return FAILED


def _record(
    conn: duckdb.DuckDBPyConnection,
    targets: Sequence[CustomDomain],
    results: Sequence[CheckResult],
    before: dict[str, DomainState],
    now: datetime,
) -> None:
    ts = _naive(now)
    updates: list[list[Any]] = []
    history: list[list[Any]] = []
    for cd, res in zip(targets, results, strict=True):
        prev = before.get(cd.domain)
        prev_state = prev.state if prev else PENDING
        state = _next_state(prev_state, res)
        reason = res.reason if state != VERIFIED or res.ok else f"last check: {res.reason}"
        verified_at = ts if state == VERIFIED and prev_state != VERIFIED else None
        updates.append([state, reason, ts, verified_at, ts, cd.domain])
        answers = " ".join([" → ".join(res.chain), *res.addresses]).strip() or None
        history.append(
            [cd.domain, cd.tenant, cd.deployment, ts, res.ok, res.transient, res.reason, answers]
        )
    with transaction(conn):
        conn.executemany(
            "UPDATE domains SET state = ?, reason = ?, checked_at = ?,"
            " verified_at = coalesce(?, verified_at), updated_at = ? WHERE domain = ?",
            updates,
        )
        conn.executemany("INSERT INTO domain_checks VALUES (?, ?, ?, ?, ?, ?, ?, ?)", history)


def _run_checks(
    spec: Spec,
    store_path: Path,
    targets: Sequence[CustomDomain],
    now: datetime,
    resolver: dns.resolver.Resolver | None,
) -> list[tuple[CheckResult, DomainState]]:
    if not targets:
        return []
    with connect(store_path) as conn:
        before = sync(conn, spec, now)
        conn.executemany(
            "UPDATE domains SET state = ?, updated_at = ? WHERE domain = ? AND state <> ?",
            [[VERIFYING, _naive(now), cd.domain, VERIFIED] for cd in targets],
        )
    res = resolver or make_resolver(spec.platform.dns.nameservers, DEFAULT_TIMEOUT)
    results = [check(spec, cd, res) for cd in targets]
    with connect(store_path) as conn:
        _record(conn, targets, results, before, now)
        after = _load(conn)
    return [(r, after[cd.domain]) for cd, r in zip(targets, results, strict=True)]


def verify(
    spec: Spec,
    store_path: Path,
    domain: str | None = None,
    *,
    tenant: str | None = None,
    now: datetime | None = None,
    resolver: dns.resolver.Resolver | None = None,
) -> list[tuple[CheckResult, DomainState]]:
    """Check `domain` (or every custom domain, or `tenant`'s) now and record the outcome."""
    targets = [find(spec, domain)] if domain else custom_domains(spec, tenant)
    return _run_checks(spec, store_path, targets, _utcnow(now), resolver)


def _due(row: DomainState | None, now: datetime, interval: timedelta) -> bool:
    if row is None or (row.state == PENDING and row.checked_at is None):
        return True
    if row.state == VERIFIED:
        return False
    last = row.checked_at or row.added_at
    return last <= now - interval


def recheck_pending(
    spec: Spec,
    store_path: Path,
    now: datetime | None = None,
    *,
    interval: timedelta = RECHECK_INTERVAL,
    resolver: dns.resolver.Resolver | None = None,
) -> list[tuple[CheckResult, DomainState]]:
    """For the metering agent: check every domain not yet verified whose last check is at
    least `interval` old (new domains at once). Safe to call as often as the agent cycles;
    it does the 5-minute pacing itself. Returns what it checked (empty when nothing was due)."""
    at = _utcnow(now)
    with connect(store_path) as conn:
        rows = sync(conn, spec, at)
    due = [cd for cd in custom_domains(spec) if _due(rows.get(cd.domain), at, interval)]
    return _run_checks(spec, store_path, due, at, resolver)


def states(
    spec: Spec, store_path: Path, tenant: str | None = None, now: datetime | None = None
) -> list[tuple[CustomDomain, DomainState]]:
    """Every custom domain of the file (or `tenant`'s) with its recorded state."""
    targets = custom_domains(spec, tenant)
    with connect(store_path) as conn:
        rows = sync(conn, spec, _utcnow(now))
    return [(cd, rows[cd.domain]) for cd in targets]


def verified_domains(spec: Spec, store_path: Path) -> frozenset[str]:
    """The custom domains that may get routes and certificates: verified for the deployment
    that lists them now. Pass this to `hosting.edge.build_config(verified_domains=…)`."""
    if not store_path.exists():
        return frozenset()
    owners = {cd.domain: (cd.tenant, cd.deployment) for cd in custom_domains(spec)}
    with connect(store_path, read_only=True) as conn:
        rows = conn.execute(
            "SELECT domain, tenant, deployment FROM domains WHERE state = ?", [VERIFIED]
        ).fetchall()
    return frozenset(d for d, t, dep in rows if owners.get(d) == (t, dep))


def unverified(items: Iterable[tuple[CustomDomain, DomainState]]) -> list[str]:
    return [cd.domain for cd, st in items if st.state != VERIFIED]


def newly_verified(outcomes: Iterable[tuple[CheckResult, DomainState]]) -> list[str]:
    """Domains that became verified in these checks: the edge needs its config reloaded
    (routes and certificates for them) — `apply`, or the driver's `load_edge()`."""
    return [
        st.domain
        for _res, st in outcomes
        if st.state == VERIFIED and st.verified_at is not None and st.verified_at == st.checked_at
    ]
