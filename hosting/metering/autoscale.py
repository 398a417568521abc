"""Autoscaling (`replicas: {min, max, cpu_target}`, platform.target swarm): from the last
minutes' CPU of a service's replicas, the replica count it should have, and why.

The rule is Kubernetes' horizontal autoscaler's: desired = ceil(current × usage / target),
within [min, max], left alone within 10 % of the target so that noise does not flap it, and
at most one change per cooldown. Usage is a replica's CPU as a percentage of its plan's
CPU limit, so a target of 70 means "each replica at 70 % of what its plan allows".
Every replica runs at the plan's limits: scaling never gives one more than its plan.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb

from hosting.metering.engine import Engine
from hosting.spec import names
from hosting.spec.models import Autoscale, DatabaseDeployment, Spec
from hosting.store import connect

WINDOW = timedelta(minutes=3)  # the samples a decision averages over
TOLERANCE = 0.10
MIN_SAMPLES = 2  # one sample is one collection interval: too little to act on


@dataclass(frozen=True)
class Decision:
    replicas: int
    reason: str
    cpu_percent: float | None  # the averaged usage it acted on (None: bounds only)


def decide(
    *,
    bounds: Autoscale,
    current: int,
    plan_cpus: float,
    cpu_samples: Sequence[float],
    last_event: datetime | None,
    now: datetime,
) -> Decision | None:
    """The new replica count, or None to leave it.

    `cpu_samples`: the deployment's CPU over the window, each the sum over its replicas in
    percent of one core (deployment_metrics.cpu_usage).
    """
    if current < bounds.min or current > bounds.max:
        # The file's bounds changed: follow them now, whatever the cooldown.
        wanted = min(max(current, bounds.min), bounds.max)
        return Decision(wanted, f"outside min {bounds.min} … max {bounds.max}", None)
    if last_event is not None and now - last_event < timedelta(seconds=bounds.cooldown_s):
        return None
    if len(cpu_samples) < MIN_SAMPLES or current < 1:
        return None
    per_replica = sum(cpu_samples) / len(cpu_samples) / current / plan_cpus
    ratio = per_replica / bounds.cpu_target
    if abs(ratio - 1) <= TOLERANCE:
        return None
    wanted = min(max(math.ceil(current * ratio), bounds.min), bounds.max)
    if wanted == current:
        return None
    direction = "above" if wanted > current else "below"
    return Decision(
        wanted,
        f"CPU {per_replica:.0f} % per replica, {direction} the target {bounds.cpu_target} %",
        round(per_replica, 1),
    )


def recent_cpu(
    conn: duckdb.DuckDBPyConnection, tenant: str, deployment: str, now: datetime
) -> tuple[list[float], datetime | None]:
    """The deployment's CPU samples a decision at `now` (naive UTC) averages, and the time
    of its last scale event. A sample sums the replicas running when it was taken: those
    from before the last change counted another number of them, so only later ones count."""
    row = conn.execute(
        'SELECT max("timestamp") FROM scale_events WHERE tenant = ? AND deployment = ?',
        [tenant, deployment],
    ).fetchone()
    last: datetime | None = row[0] if row else None
    since = now - WINDOW if last is None else max(now - WINDOW, last)
    rows = conn.execute(
        "SELECT cpu_usage FROM deployment_metrics WHERE tenant = ? AND deployment = ? AND "
        '"timestamp" > ? AND cpu_usage IS NOT NULL',
        [tenant, deployment, since],
    ).fetchall()
    return [float(r[0]) for r in rows], last


@dataclass(frozen=True)
class ScaleEvent:
    tenant: str
    deployment: str
    from_replicas: int
    to_replicas: int
    reason: str


def run_autoscaler(
    spec: Spec, store_path: Path, engine: Engine, now: datetime | None = None
) -> list[ScaleEvent]:
    """One pass over the autoscaled deployments of a swarm: scale what needs it, record why."""
    if spec.platform.target != "swarm":
        return []
    stamp = (now or datetime.now(UTC)).astimezone(UTC).replace(tzinfo=None)
    events: list[ScaleEvent] = []
    for tid, tenant in spec.tenants.items():
        plan_cpus = spec.limits_of(tenant).cpus
        for did, dep in tenant.deployments.items():
            if isinstance(dep, DatabaseDeployment) or dep.autoscale is None or dep.stopped:
                continue
            service = engine.service(names.service_name(spec.platform.name, tid, did))
            if service is None:  # not applied yet
                continue
            current = int(service["Spec"]["Mode"]["Replicated"]["Replicas"])
            with connect(store_path, read_only=True) as conn:
                samples, last = recent_cpu(conn, tid, did, stamp)
            decision = decide(
                bounds=dep.autoscale,
                current=current,
                plan_cpus=plan_cpus,
                cpu_samples=samples,
                last_event=last,
                now=stamp,
            )
            if decision is None:
                continue
            engine.scale_service(service, decision.replicas)
            with connect(store_path) as conn:
                conn.execute(
                    "INSERT INTO scale_events VALUES (?, ?, ?, ?, ?, ?, ?)",
                    [
                        tid,
                        did,
                        stamp,
                        current,
                        decision.replicas,
                        decision.reason,
                        decision.cpu_percent,
                    ],
                )
            events.append(ScaleEvent(tid, did, current, decision.replicas, decision.reason))
    return events


def recent_events(
    store_path: Path, tenant: str, deployment: str, limit: int = 5
) -> list[dict[str, Any]]:
    """The last scale events of a deployment, newest first (for `status`)."""
    with connect(store_path, read_only=True) as conn:
        rows = conn.execute(
            'SELECT "timestamp", from_replicas, to_replicas, reason FROM scale_events '
            'WHERE tenant = ? AND deployment = ? ORDER BY "timestamp" DESC LIMIT ?',
            [tenant, deployment, limit],
        ).fetchall()
    return [
        {"at": at.isoformat() + "Z", "from": a, "to": b, "reason": why} for at, a, b, why in rows
    ]
