"""Health every 30 s (by default), blaming the part that failed.

- An app is probed at its own address: each container's IP on its tenant network, reached
  from the host, on `health.path`. Docker's own health check (run inside the container)
  decides where the host has no address to reach, and overrules a failure from the host's
  side when it passes: restarting an app does not mend a path to it. Only this verdict counts
  towards an auto-restart, which restarts the failing containers after N failures in a row.
- The route through the edge (the deployment's hostname on its `health.path`) is recorded
  beside it as route health. It never restarts an app.
- The edge itself: when it does not answer, an `edge_down` alert, and after N failures in a
  row its container (ours) is restarted. Its failure restarts no app.
- Restarts are capped per deployment (and for the edge): at most `limit` in `window_s`; then
  a `restart_loop` alert instead, and no automatic restart until it is seen healthy again, so
  a crash-looping image is not restarted forever. The count comes from the restart events in
  the store and the hold is stored too, so an agent restart resets neither.
- Docker unreachable: nothing is checked and nothing restarted; the job fails saying so.
- On a swarm a database's task may run on another node than the agent's (the manager): its
  container is read from that node's engine (hosting.provider.tasks), and Swarm, not the
  agent, replaces a task that fails its check. A node that does not answer leaves that
  database unknown, named in the detail.
"""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb

from hosting.errors import MeteringError
from hosting.metering.alerts import (
    CRITICAL,
    EDGE_DOWN,
    RESTART_LOOP,
    Alert,
    clear_alert,
    record_alert,
)
from hosting.metering.engine import Container, Engine, EngineUnreachable
from hosting.metering.inventory import record_deployments
from hosting.metering.probes import (
    HEALTHY,
    UNHEALTHY,
    UNKNOWN,
    EdgeProbeFn,
    Probe,
    ProbeFn,
    edge_probe,
    http_probe,
)
from hosting.spec import names
from hosting.spec.models import DatabaseDeployment, Spec
from hosting.store import connect, transaction

__all__ = [
    "HEALTHY",
    "UNHEALTHY",
    "UNKNOWN",
    "EdgeResult",
    "HealthReport",
    "HealthResult",
    "Probe",
    "RestartPolicy",
    "edge_probe",
    "health_cycle",
    "http_probe",
]

EDGE_KEY = ("", "edge")  # the edge's rows in health_state and metering_events
EDGE_TIMEOUT_S = 5.0
Key = tuple[str, str]


@dataclass(frozen=True)
class RestartPolicy:
    after: int = 3  # consecutive failures before a restart
    limit: int = 3  # restarts of one deployment within the window, then an alert instead
    window_s: float = 900.0


@dataclass(frozen=True)
class HealthResult:
    tenant: str
    deployment: str
    status: str  # the app's own health: decides auto-restarts
    detail: str
    http_status: int | None
    latency_ms: float | None
    failures: int
    restarted: bool = False
    route_status: str | None = None  # through the edge; None for databases
    route_detail: str | None = None
    held: bool = False  # auto-restart stopped after its cap (restart_loop)


@dataclass(frozen=True)
class EdgeResult:
    container: str
    status: str  # healthy: it answers (whatever it says) | unhealthy
    detail: str
    failures: int
    restarted: bool = False
    held: bool = False


@dataclass(frozen=True)
class HealthReport:
    deployments: list[HealthResult]
    edge: EdgeResult | None  # None when no deployment needs the edge
    alerts: list[Alert] = field(default_factory=list)  # raised by this cycle
    restart_errors: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _Target:
    tenant: str
    deployment: str
    kind: str
    host: str
    path: str
    timeout: float
    port: int | None
    network: str
    containers: tuple[Container, ...]


def next_state(
    status: str,
    failures: int,
    held_at: datetime | None,
    recent_restarts: int,
    can_restart: bool,
    policy: RestartPolicy,
    stamp: datetime,
) -> tuple[int, datetime | None, str]:
    """(failures, held_at, action) after one verdict; action is "", "restart" or "hold"."""
    if status == HEALTHY:
        return 0, None, ""
    if status != UNHEALTHY:
        return failures, held_at, ""  # unknown (starting, nothing to probe): no evidence
    failures += 1
    if failures < policy.after or not can_restart or held_at is not None:
        return failures, held_at, ""
    if recent_restarts >= policy.limit:
        return failures, stamp, "hold"
    return failures, None, "restart"


def _container_probe(t: _Target, c: Container, probe: ProbeFn) -> Probe:
    address = c.address_on(t.network) if t.port is not None else None
    if address is None:
        if c.health == "healthy":
            return Probe(HEALTHY, f"{c.name}: its Docker health check passes")
        if c.health == "unhealthy":
            return Probe(UNHEALTHY, f"{c.name} fails its Docker health check")
        return Probe(UNKNOWN, f"{c.name}: no address the host reaches, no Docker health check")
    where = f"{c.name} at {address}:{t.port}"
    p = probe(f"http://{address}:{t.port}", t.host, t.path, t.timeout)
    if p.status == HEALTHY:
        note = "; its Docker health check fails (wget or curl missing?)"
        return replace(p, detail=f"{where}: {p.detail}{note if c.health == 'unhealthy' else ''}")
    if c.health == "healthy":
        return replace(p, status=HEALTHY, detail=f"{where}: {p.detail}; Docker's check passes")
    if c.health == "starting":
        return replace(p, status=UNKNOWN, detail=f"{where}: {p.detail}; still starting")
    return replace(p, detail=f"{where}: {p.detail}")


def _app_probe(t: _Target, probe: ProbeFn) -> tuple[Probe, tuple[Container, ...]]:
    """The app's own verdict and the containers that fail it."""
    if not t.containers:
        return Probe(UNKNOWN, "no container"), ()
    down = tuple(c for c in t.containers if c.state != "running")
    if down:
        return Probe(UNHEALTHY, f"container {down[0].name} is {down[0].state or 'missing'}"), down
    if t.kind == "database":
        sick = tuple(c for c in t.containers if c.health == "unhealthy")
        if sick:
            return Probe(UNHEALTHY, f"container {sick[0].name} fails its Docker health check"), sick
        return Probe(HEALTHY, "container running"), ()
    verdicts = [(c, _container_probe(t, c, probe)) for c in t.containers]
    failing = tuple(c for c, p in verdicts if p.status == UNHEALTHY)
    for wanted in (UNHEALTHY, UNKNOWN):
        for _, p in verdicts:
            if p.status == wanted:
                return p, failing
    return verdicts[0][1], ()


def _targets(spec: Spec, by_dep: dict[Key, list[Container]]) -> list[_Target]:
    targets = []
    for tid, tenant in spec.tenants.items():
        for did, dep in tenant.deployments.items():
            if dep.stopped or (not isinstance(dep, DatabaseDeployment) and dep.static):
                continue  # nothing runs: a static site is the edge's own health
            if isinstance(dep, DatabaseDeployment):
                path, timeout, port = "/", 5.0, None
            else:
                path, timeout, port = dep.health.path, float(dep.health.timeout_s), dep.port
            targets.append(
                _Target(
                    tid,
                    did,
                    dep.type,
                    names.hostname(tid, did, dep.type, spec.platform.domain),
                    path,
                    timeout,
                    port,
                    names.network_name(spec.platform.name, tid),
                    tuple(sorted(by_dep.get((tid, did), []), key=lambda c: c.name)),
                )
            )
    return targets


def _swarm_databases(
    spec: Spec, manager: Engine, listed: list[Container]
) -> tuple[list[Container], dict[Key, str]]:
    """The listing with each database's containers as the engine of its task's node lists
    them (the manager's listing has only its own); the databases whose node did not answer."""
    from hosting.errors import HostingError
    from hosting.provider.tasks import deployment_containers

    out = [c for c in listed if c.kind != "database"]
    unreached: dict[Key, str] = {}
    for tid, tenant in spec.tenants.items():
        for did, dep in tenant.deployments.items():
            if not isinstance(dep, DatabaseDeployment) or dep.stopped:
                continue
            try:
                out += [p.container for p in deployment_containers(spec, tid, did, manager)]
            except HostingError as exc:
                unreached[(tid, did)] = exc.message
    return out, unreached


def _needs_edge(spec: Spec) -> bool:
    return any(
        not isinstance(dep, DatabaseDeployment) and not dep.stopped
        for tenant in spec.tenants.values()
        for dep in tenant.deployments.values()
    )


def _span(seconds: float) -> str:
    return f"{seconds / 60:g} min" if seconds >= 60 else f"{seconds:g} s"


def health_cycle(
    store_path: Path,
    engine: Engine,
    spec: Spec,
    *,
    edge_url: str = "https://127.0.0.1:443",
    edge_container: str | None = None,
    policy: RestartPolicy | None = None,
    probe: ProbeFn = http_probe,
    app_probe: ProbeFn = http_probe,
    edge_check: EdgeProbeFn = edge_probe,
    now: datetime | None = None,
) -> HealthReport:
    """One health cycle. `probe` goes through the edge (route health), `app_probe` to a
    container's own address, `edge_check` asks whether the edge answers at all."""
    policy = policy or RestartPolicy()
    stamp = now or datetime.now(UTC).replace(tzinfo=None)
    edge_name = edge_container or names.edge_name(spec.platform.name)
    try:
        listed = engine.containers(all=True)
        edge_verdict = edge_check(edge_url, EDGE_TIMEOUT_S) if _needs_edge(spec) else None
        edge_found = (
            engine.find(edge_name) if edge_verdict and edge_verdict.status != HEALTHY else None
        )
    except EngineUnreachable as exc:
        raise EngineUnreachable(
            f"{exc.message}; health checked nothing and restarted nothing", exc.hint
        ) from None
    unreached: dict[Key, str] = {}
    if spec.platform.target == "swarm":
        listed, unreached = _swarm_databases(spec, engine, listed)
    by_dep: dict[Key, list[Container]] = {}
    for c in listed:
        by_dep.setdefault((c.tenant, c.deployment), []).append(c)
    targets = _targets(spec, by_dep)
    edge_up = edge_verdict is not None and edge_verdict.status == HEALTHY

    def check(t: _Target) -> tuple[Probe, tuple[Container, ...], Probe | None]:
        if (t.tenant, t.deployment) in unreached:
            return Probe(UNKNOWN, unreached[(t.tenant, t.deployment)]), (), None
        app, failing = _app_probe(t, app_probe)
        if t.kind == "database":
            # Swarm replaces its own failing task; the manager cannot restart another node's
            return app, () if spec.platform.target == "swarm" else failing, None
        route = probe(edge_url, t.host, t.path, t.timeout) if edge_up else None
        return app, failing, route or Probe(UNHEALTHY, "the edge does not answer")

    with ThreadPoolExecutor(max_workers=16) as pool:
        checked = list(pool.map(check, targets))

    results: list[HealthResult] = []
    alerts: list[Alert] = []
    to_restart: dict[Key, list[tuple[str, str]]] = {}
    edge: EdgeResult | None = None
    with connect(store_path) as conn, transaction(conn):
        state = _load_state(conn)
        recent = _restarts_since(conn, stamp - timedelta(seconds=policy.window_s))
        for t, (p, failing, route) in zip(targets, checked, strict=True):
            key = (t.tenant, t.deployment)
            failures, held_at, action = next_state(
                p.status, *state.get(key, (0, None)), recent.get(key, 0), bool(failing),
                policy, stamp,
            )  # fmt: skip
            state[key] = (failures, held_at)
            if action == "restart":
                to_restart[key] = [(c.id, c.name) for c in failing]
            elif action == "hold":
                alerts.append(_loop_alert(t.tenant, f"{t.tenant}/{t.deployment}", p.detail,
                                          recent.get(key, 0), policy))  # fmt: skip
            results.append(
                HealthResult(
                    t.tenant, t.deployment, p.status, p.detail, p.http_status, p.latency_ms,
                    failures, False, route.status if route else None,
                    route.detail if route else None, held_at is not None,
                )
            )  # fmt: skip
        if edge_verdict is not None:
            edge, edge_alerts, action = _edge_turn(
                conn, state, recent, edge_name, edge_verdict, edge_found, policy, stamp
            )
            alerts.extend(edge_alerts)
            if action == "restart" and edge_found is not None:
                to_restart[EDGE_KEY] = [(str(edge_found["Id"]), edge_name)]
        for a in alerts:
            record_alert(conn, a, stamp)
        _clear_loops(conn, state, stamp)
        _insert_checks(conn, results, stamp)
        _save_state(conn, state, stamp)
        health = {(r.tenant, r.deployment): r.status for r in results}
        ours = [c for c in listed if c.kind == "edge" and c.name == edge_name]
        record_deployments(
            conn, spec, by_dep, health, stamp, any(c.state == "running" for c in ours)
        )
    done, errors = _restart(store_path, engine, to_restart)
    deployments = [replace(r, restarted=(r.tenant, r.deployment) in done) for r in results]
    if edge is not None:
        edge = replace(edge, restarted=EDGE_KEY in done)
    return HealthReport(deployments, edge, alerts, errors)


def _edge_turn(
    conn: duckdb.DuckDBPyConnection,
    state: dict[Key, tuple[int, datetime | None]],
    recent: dict[Key, int],
    name: str,
    verdict: Probe,
    found: dict[str, object] | None,
    policy: RestartPolicy,
    stamp: datetime,
) -> tuple[EdgeResult, list[Alert], str]:
    """The edge's failure count, hold and due action; its edge_down alert raised or cleared."""
    detail = verdict.detail
    if verdict.status != HEALTHY:
        run_state = (found or {}).get("State")
        status = run_state.get("Status") if isinstance(run_state, dict) else None
        detail += (
            f"; its container {name} is {status}"
            if found is not None
            else f"; no container {name} to restart"
        )
    failures, held_at, action = next_state(
        verdict.status, *state.get(EDGE_KEY, (0, None)), recent.get(EDGE_KEY, 0),
        found is not None, policy, stamp,
    )  # fmt: skip
    state[EDGE_KEY] = (failures, held_at)
    alerts = []
    standing = conn.execute(
        "SELECT level FROM alert_state WHERE tenant = ? AND kind = ?", [EDGE_KEY[0], EDGE_DOWN]
    ).fetchone()
    if verdict.status == UNHEALTHY and not (standing and standing[0] == CRITICAL):
        message = f"the edge does not answer: {detail}"
        alerts.append(Alert(EDGE_KEY[0], EDGE_DOWN, CRITICAL, message, failures, policy.after))
    elif verdict.status == HEALTHY and standing and standing[0] == CRITICAL:
        clear_alert(conn, EDGE_KEY[0], EDGE_DOWN, stamp)
    if action == "hold":
        alerts.append(_loop_alert(EDGE_KEY[0], f"the edge ({name})", detail,
                                  recent.get(EDGE_KEY, 0), policy))  # fmt: skip
    held = held_at is not None
    return EdgeResult(name, verdict.status, detail, failures, False, held), alerts, action


def _loop_alert(tenant: str, what: str, detail: str, restarts: int, policy: RestartPolicy) -> Alert:
    message = (
        f"{what}: restarted {restarts} time{'s' if restarts != 1 else ''}"
        f" in {_span(policy.window_s)} and still failing"
        f" ({detail}); no automatic restart until it is healthy again"
    )
    return Alert(tenant, RESTART_LOOP, CRITICAL, message, restarts, policy.limit)


def _clear_loops(
    conn: duckdb.DuckDBPyConnection, state: dict[Key, tuple[int, datetime | None]], stamp: datetime
) -> None:
    """A tenant's restart_loop alert stands while one of its deployments is held."""
    held = {key[0] for key, (_, held_at) in state.items() if held_at is not None}
    standing = conn.execute(
        "SELECT tenant FROM alert_state WHERE kind = ? AND level = ?", [RESTART_LOOP, CRITICAL]
    ).fetchall()
    for (tenant,) in standing:
        if tenant not in held:
            clear_alert(conn, tenant, RESTART_LOOP, stamp)


def _load_state(conn: duckdb.DuckDBPyConnection) -> dict[Key, tuple[int, datetime | None]]:
    rows = conn.execute("SELECT tenant, deployment, failures, held_at FROM health_state")
    return {(r[0], r[1]): (int(r[2]), r[3]) for r in rows.fetchall()}


def _restarts_since(conn: duckdb.DuckDBPyConnection, since: datetime) -> dict[Key, int]:
    rows = conn.execute(
        "SELECT tenant, deployment, count(*) FROM metering_events"
        " WHERE kind = 'restart' AND created_at >= ? GROUP BY tenant, deployment",
        [since],
    ).fetchall()
    return {(r[0], r[1]): int(r[2]) for r in rows}


def _insert_checks(
    conn: duckdb.DuckDBPyConnection, results: list[HealthResult], stamp: datetime
) -> None:
    if not results:
        return
    conn.execute(
        "INSERT INTO health_checks (tenant, deployment, checked_at, status, detail,"
        " http_status, latency_ms, route_status, route_detail)"
        " SELECT unnest($1::VARCHAR[]), unnest($2::VARCHAR[]), $3::TIMESTAMP,"
        " unnest($4::VARCHAR[]), unnest($5::VARCHAR[]), unnest($6::INTEGER[]),"
        " unnest($7::DOUBLE[]), unnest($8::VARCHAR[]), unnest($9::VARCHAR[])",
        [
            [r.tenant for r in results],
            [r.deployment for r in results],
            stamp,
            [r.status for r in results],
            [r.detail for r in results],
            [r.http_status for r in results],
            [r.latency_ms for r in results],
            [r.route_status for r in results],
            [r.route_detail for r in results],
        ],
    )


def _save_state(
    conn: duckdb.DuckDBPyConnection,
    state: dict[Key, tuple[int, datetime | None]],
    stamp: datetime,
) -> None:
    conn.execute("DELETE FROM health_state")
    if state:
        keys = sorted(state)
        conn.execute(
            "INSERT INTO health_state (tenant, deployment, failures, updated_at, held_at)"
            " SELECT unnest($1::VARCHAR[]), unnest($2::VARCHAR[]), unnest($3::INTEGER[]),"
            " $4::TIMESTAMP, unnest($5::TIMESTAMP[])",
            [
                [k[0] for k in keys],
                [k[1] for k in keys],
                [state[k][0] for k in keys],
                stamp,
                [state[k][1] for k in keys],
            ],
        )


def _restart(
    store_path: Path, engine: Engine, targets: dict[Key, list[tuple[str, str]]]
) -> tuple[set[Key], list[str]]:
    """Restart, then record it and reset the count: a crash in between restarts again.

    Docker gone in the middle stops here: what was not restarted is not recorded either,
    so it neither counts towards the cap nor loses its failures."""
    done: dict[Key, str] = {}
    errors: list[str] = []
    for key, containers in targets.items():
        failed = []
        try:
            for cid, _ in containers:
                try:
                    engine.restart(cid)
                except EngineUnreachable:
                    raise
                except MeteringError as exc:
                    failed.append(exc.message)
        except EngineUnreachable as exc:
            errors.append(f"{exc.message}; restarted nothing more")
            break
        names_ = ", ".join(name for _, name in containers)
        if failed:
            errors.append(f"restart of {names_} failed: {failed[0]}")
        done[key] = (
            f"restarted {names_}" if not failed else f"restart of {names_} failed: {failed[0]}"
        )
    if not done:
        return set(), errors
    stamp = datetime.now(UTC).replace(tzinfo=None)
    with connect(store_path) as conn, transaction(conn):
        for (tenant, deployment), detail in done.items():
            conn.execute(
                "INSERT INTO metering_events VALUES (?, ?, ?, 'restart', ?, ?)",
                [str(uuid.uuid4()), tenant, deployment, detail, stamp],
            )
            conn.execute(
                "UPDATE health_state SET failures = 0, updated_at = ?"
                " WHERE tenant = ? AND deployment = ?",
                [stamp, tenant, deployment],
            )
    return {k for k, d in done.items() if d.startswith("restarted ")}, errors
