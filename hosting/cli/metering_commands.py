"""Metering commands: agent, meter [--once], meter import, metrics, storage."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from hosting import store
from hosting.cli import EXIT_INTERRUPTED, cli
from hosting.cli.context import App
from hosting.cli.output import echo_json, human_bytes, json_option, table, to_jsonable
from hosting.errors import MeteringError, NotFoundError
from hosting.metering.agent import Agent, AgentConfig, JobOutcome
from hosting.metering.engine import Engine
from hosting.metering.ingest import import_events
from hosting.metering.nodes import NodesEngine
from hosting.metering.queries import metrics_history, storage_info
from hosting.metering.storage import container_credentials
from hosting.spec.limits import tenant_or_error

pass_app = click.make_pass_decorator(App)
F = TypeVar("F", bound=Callable[..., Any])


def agent_options(func: F) -> F:
    options = [
        click.option("--metrics-interval", type=float, default=60.0, show_default=True,
                     help="Seconds between metrics cycles."),
        click.option("--health-interval", type=float, default=30.0, show_default=True,
                     help="Seconds between health checks."),
        click.option("--storage-interval", type=float, default=3600.0, show_default=True,
                     help="Seconds between storage measurements (and alert checks)."),
        click.option("--backup-interval", type=click.FloatRange(min=0), default=86400.0,
                     show_default=True,
                     help="Seconds between database backups (`hosting backup run`); 0 disables."),
        click.option("--no-base-backups", "no_base_backups", is_flag=True,
                     help="Leave out the base backup (pg_basebackup, for point-in-time recovery) "
                     "each database backup run otherwise takes, with the plan's retention."),
        click.option("--wal-interval", type=click.FloatRange(min=0), default=60.0,
                     show_default=True,
                     help="Seconds between sealing the archived WAL (encrypted at rest) and "
                     "copying it and base backups off-host (platform.backups.s3); 0 disables."),
        click.option("--drill-interval", type=click.FloatRange(min=0), default=86400.0,
                     show_default=True,
                     help="Seconds between restore drills of the newest backups; 0 disables."),
        click.option("--autoscale-interval", type=click.FloatRange(min=1), default=30.0,
                     show_default=True,
                     help="Seconds between autoscaling decisions (platform.target swarm, "
                     "`replicas: {min, max, cpu_target}`)."),
        click.option("--snapshot-interval", type=click.FloatRange(min=0), default=86400.0,
                     show_default=True,
                     help="Seconds between store snapshots (`store snapshot`); 0 disables."),
        click.option("--access-log", "access_logs", multiple=True, type=click.Path(),
                     help="Edge JSON access log to read (repeatable) "
                     "[default: STATE_DIR/edge/logs/access.log]."),
        click.option("--edge-url", default="https://127.0.0.1:443", show_default=True,
                     help="Where health probes reach the edge (with each deployment's Host)."),
        click.option("--edge-container", default="",
                     help="The edge's container, restarted when the edge stops answering "
                     "[default: PLATFORM_edge]."),
        click.option("--restart-after", type=click.IntRange(1, 1000), default=3,
                     show_default=True,
                     help="Restart an app (its own probe) or the edge after this many "
                     "failed probes in a row."),
        click.option("--restart-limit", type=click.IntRange(1, 1000), default=3,
                     show_default=True,
                     help="At most this many restarts of one deployment per window; then a "
                     "restart_loop alert and no more until it is healthy again."),
        click.option("--restart-window", type=click.FloatRange(min=1), default=900.0,
                     show_default=True, help="Seconds of the restart limit's window."),
    ]  # fmt: skip
    for option in reversed(options):
        func = option(func)
    return func


def _agent(app: App, opts: dict[str, Any], echo: bool) -> Agent:
    spec = app.spec
    logs = tuple(Path(p) for p in opts["access_logs"]) or (
        app.state_dir / "edge" / "logs" / "access.log",
    )
    config = AgentConfig(
        metrics_interval=opts["metrics_interval"],
        health_interval=opts["health_interval"],
        storage_interval=opts["storage_interval"],
        backup_interval=opts["backup_interval"],
        drill_interval=opts["drill_interval"],
        base_backups=not opts["no_base_backups"],
        wal_interval=opts["wal_interval"],
        snapshot_interval=opts["snapshot_interval"],
        autoscale_interval=opts["autoscale_interval"],
        access_logs=logs,
        edge_url=opts["edge_url"],
        edge_container=opts["edge_container"],
        restart_after=opts["restart_after"],
        restart_limit=opts["restart_limit"],
        restart_window=opts["restart_window"],
    )
    engine = Engine(spec.platform.docker.host)
    nodes = spec.platform.swarm.nodes if spec.platform.target == "swarm" else {}
    # A database task on a worker is asked on that worker's engine.
    databases_at = NodesEngine(engine, nodes) if nodes else engine
    return Agent(
        spec,
        app.store_path,
        spec_dir=app.file_path.resolve().parent,
        config=config,
        engine=engine,
        credentials=container_credentials(databases_at),
        log_file=app.state_dir / "logs" / "agent.log",
        echo=(lambda line: click.echo(line, err=True)) if echo else None,
    )


def _run_forever(agent: Agent) -> None:
    stop = threading.Event()
    received: list[int] = []

    def on_signal(signum: int, _frame: object) -> None:
        received.append(signum)
        stop.set()  # finish the job in progress, then leave

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    agent.run(stop)
    if received and received[0] == signal.SIGINT:
        raise click.exceptions.Exit(EXIT_INTERRUPTED)


@cli.command()
@agent_options
@click.option("--quiet", is_flag=True, help="Log only to STATE_DIR/logs/agent.log.")
@pass_app
def agent(app: App, /, quiet: bool, **opts: Any) -> None:
    """Run the metering agent: metrics, health, storage on their schedules, until stopped.

    Log lines are JSON, on stderr and in STATE_DIR/logs/agent.log. SIGTERM or Ctrl-C end it
    after the job in progress.
    """
    _run_forever(_agent(app, opts, echo=not quiet))


def _render_outcomes(outcomes: list[JobOutcome]) -> None:
    for o in outcomes:
        if not o.ok:
            click.echo(f"{o.job:<8} failed  {o.error}")
            continue
        s = o.summary
        if o.job == "metrics":
            text = f"{s['samples']} samples from {s['containers']} containers"
            if s.get("nodes"):  # a swarm's: how many on each node
                text += " (" + ", ".join(f"{n} {c}" for n, c in sorted(s["nodes"].items())) + ")"
            text += f", {s['log_lines']} access-log lines"
            for node, why in sorted((s.get("unreached") or {}).items()):
                text += f"; node {node} not read: {why}"
        elif o.job == "health":
            parts = [f"{s['statuses'].get(k, 0)} {k}" for k in ("healthy", "unhealthy", "unknown")]
            text = ", ".join(parts)
            for ref, detail in s["failing"].items():
                text += f"; {ref}: {detail}"
            edge = s.get("edge")
            if edge and edge["status"] != "healthy":
                text += f"; edge: {edge['detail']}"
            if edge and edge["restarted"]:
                text += f"; restarted the edge ({edge['container']})"
            for ref, detail in s["routes_failing"].items():
                if not (edge and edge["status"] != "healthy"):  # else the edge says it all
                    text += f"; route to {ref}: {detail}"
            if s["restarted"]:
                text += f"; restarted {', '.join(s['restarted'])}"
            if s["alerts"]:
                text += "; alerts: " + "; ".join(s["alerts"])
            if s["restart_errors"]:
                text += "; " + "; ".join(s["restart_errors"])
        elif o.job == "domains":
            text = f"{s['checked']} custom domains checked"
        elif o.job == "network":
            text = f"{len(s['shaped'])} containers shaped, {s['unchanged']} already at their rate"
            if s["skipped"]:
                text = f"network rates not enforced: {s['skipped']}"
        elif o.job == "backups":
            text = f"{s['backed_up']} databases backed up" if s.get("due", True) else "not due"
        elif o.job == "drills":
            text = f"{s['drilled']} backups restored in drills" if s.get("due", True) else "not due"
        elif o.job == "wal":
            text = f"{s['sealed']} WAL files sealed, {s['copied']} files copied off-host"
        elif o.job == "autoscale":
            text = f"{s['scaled']} services scaled"
        elif o.job == "snapshot":
            text = f"store snapshot {s['snapshot']}" if s.get("due", True) else "not due"
        else:
            text = f"{s['samples']} measurements"
            if s["alerts"]:
                text += "; alerts: " + "; ".join(s["alerts"])
            if s["errors"]:
                text += "; errors: " + "; ".join(s["errors"])
        click.echo(f"{o.job:<8} ok      {text} ({o.seconds:.2f} s)")


@cli.group(invoke_without_command=True)
@click.option("--once", is_flag=True, help="Run every collector once, then exit (cron, tests).")
@agent_options
@json_option
@click.pass_context
def meter(ctx: click.Context, /, once: bool, as_json: bool, **opts: Any) -> None:
    """The metering agent: `meter --once` runs one cycle of every collector and of the WAL
    job, and the database backups and restore drills when they are due (--backup-interval,
    --drill-interval after the newest; 0 disables);
    `meter` alone runs the agent like `hosting agent`.

    A store snapshot is taken too when one is due (--snapshot-interval after the newest).
    """
    if ctx.invoked_subcommand is not None:
        return
    app = ctx.find_object(App)
    assert app is not None
    if not once:
        _run_forever(_agent(app, opts, echo=True))
        return
    with store.connect(app.store_path, read_only=True):
        pass  # a store that will not open is one error here, not one per collector
    runner = _agent(app, opts, echo=False)
    outcomes = runner.run_once()
    wal = runner.run_wal()  # cheap when nothing is new: every run, like the collectors
    if wal is not None:
        outcomes.append(wal)
    backups = runner.run_due_backups()  # on the agent's schedule, so cron can run --once often
    if backups is not None:
        outcomes.append(backups)
    drills = runner.run_due_drills()  # after the backups, so a new backup gets its drill
    if drills is not None:
        outcomes.append(drills)
    snapshot = runner.run_due_snapshot()
    if snapshot is not None:
        outcomes.append(snapshot)
    if as_json:
        echo_json({"jobs": [to_jsonable(o) for o in outcomes]})
    else:
        _render_outcomes(outcomes)
    failed = [o for o in outcomes if not o.ok]
    if failed:
        raise MeteringError(
            "; ".join(f"{o.job}: {o.error}" for o in failed),
            "the other collectors ran; see STATE_DIR/logs/agent.log",
        )


@meter.command("import")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@json_option
@pass_app
def meter_import(app: App, file: Path, as_json: bool) -> None:
    """Import usage events (JSON Lines, SPEC section 4); ids seen before are skipped.

    A file with a bad line imports nothing and names every bad line.
    """
    result = import_events(
        app.store_path, file, display_name=str(file), tenants=list(app.spec.tenants)
    )
    if as_json:
        echo_json(result)
        return
    click.echo(
        f"{file}: {result.events} events, {result.imported} imported, "
        f"{result.skipped} skipped (already known)"
    )


def _split_ref(ref: str) -> tuple[str, str]:
    tenant, sep, deployment = ref.partition("/")
    if not sep or not tenant or not deployment:
        raise click.BadParameter(f"`{ref}` is not TENANT/DEPLOYMENT (e.g. acme/shop)")
    return tenant, deployment


def _fmt(value: Any, kind: str) -> str:
    if value is None:
        return "-"
    if kind == "bytes":
        return human_bytes(value)
    if kind == "pct":
        return f"{value:.1f}%"
    if kind == "ms":
        return f"{value:.1f} ms"
    return str(value)


@cli.command()
@click.argument("ref", metavar="TENANT/DEPLOYMENT")
@click.option("--hours", type=click.FloatRange(min=0, min_open=True), default=24.0,
              show_default=True, help="How far back.")  # fmt: skip
@json_option
@pass_app
def metrics(app: App, ref: str, hours: float, as_json: bool) -> None:
    """Metrics history of a deployment (getMetrics)."""
    tenant_id, deployment = _split_ref(ref)
    tenant = tenant_or_error(app.spec, tenant_id)
    if deployment not in tenant.deployments:
        raise NotFoundError(
            f"unknown deployment `{ref}`",
            f"deployments of {tenant_id}: {', '.join(tenant.deployments) or 'none'}",
        )
    rows = metrics_history(app.store_path, tenant_id, deployment, hours)
    if as_json:
        echo_json({"deployment": ref, "hours": hours, "metrics": rows})
        return
    if not rows:
        click.echo(f"{ref}: no metrics in the last {hours:g} hours (is the agent running?)")
        return
    kinds = {"cpu_usage": "pct", "memory_usage": "bytes", "bandwidth_in": "bytes",
             "bandwidth_out": "bytes", "response_time_avg": "ms"}  # fmt: skip
    headers = ["time (UTC)", "CPU", "memory", "in", "out", "requests", "avg time", "errors"]
    keys = ["cpu_usage", "memory_usage", "bandwidth_in", "bandwidth_out", "requests_count",
            "response_time_avg", "error_count"]  # fmt: skip
    body = [
        [r["timestamp"].strftime("%Y-%m-%d %H:%M:%S")]
        + [_fmt(r[k], kinds.get(k, "")) for k in keys]
        for r in rows
    ]
    click.echo(table(headers, body, right=range(1, 8)))
    cpus = [r["cpu_usage"] for r in rows if r["cpu_usage"] is not None]
    out = sum(r["bandwidth_out"] or 0 for r in rows)
    reqs = sum(r["requests_count"] or 0 for r in rows)
    avg = f"{sum(cpus) / len(cpus):.2f}%" if cpus else "-"
    click.echo(f"\n{len(rows)} samples · avg CPU {avg} · out {human_bytes(out)} · {reqs} requests")


@cli.command()
@click.argument("ref", metavar="[TENANT[/DEPLOYMENT]]", required=False)
@json_option
@pass_app
def storage(app: App, ref: str | None, as_json: bool) -> None:
    """Storage by deployment and type, the tenant's total and the plan's limit."""
    tenant_id = deployment = None
    if ref:
        tenant_id, _, deployment = ref.partition("/")
        tenant = tenant_or_error(app.spec, tenant_id)
        if deployment and deployment not in tenant.deployments:
            raise NotFoundError(f"unknown deployment `{ref}`")
    infos = storage_info(app.store_path, app.spec, tenant_id, deployment or None)
    if as_json:
        echo_json({"tenants": infos})
        return
    for i, info in enumerate(infos):
        if i:
            click.echo()
        click.echo(
            f"{info.tenant} · plan {info.plan} · {human_bytes(info.total_bytes)} of "
            f"{human_bytes(info.limit_bytes)} ({info.percent:.1f}%) · {info.level}"
        )
        if info.storage:
            rows = [
                [r.deployment, r.storage_type, human_bytes(r.size_bytes),
                 "-" if r.file_count is None else r.file_count,
                 r.last_calculated.strftime("%Y-%m-%d %H:%M")]
                for r in info.storage
            ]  # fmt: skip
            click.echo(table(["deployment", "type", "size", "files", "measured (UTC)"], rows,
                             right=(2, 3)))  # fmt: skip
        else:
            click.echo("  no measurements yet (run `hosting meter --once` or the agent)")
        for a in info.alerts:
            click.echo(f"  {a.level}: {a.message}")
