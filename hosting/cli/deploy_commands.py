"""Commands that change or read the running platform: plan, apply, destroy, refresh, status,
credentials, logs, engine build and install. Pulumi is imported only inside the provider, when
a command runs, so `hosting validate` stays fast."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import threading
from datetime import date
from pathlib import Path
from typing import Any

import click

from hosting.cli import cli
from hosting.cli.context import App
from hosting.cli.output import echo_json, json_option, table
from hosting.cli.plan_output import SYMBOL, plan_json, plan_text
from hosting.errors import HostingError, LimitError, NotFoundError, ProviderError, UsageError
from hosting.spec import limits, names
from hosting.spec.models import DatabaseDeployment, Spec

pass_app = click.make_pass_decorator(App)


# -- shared helpers ---------------------------------------------------------------------------
def _passphrase() -> str | None:
    from hosting.provider.driver import passphrase_from_env

    value = passphrase_from_env()
    if value is None and sys.stdin.isatty():
        value = click.prompt("Passphrase for the stack's secrets", hide_input=True)
    return value


def _driver(
    app: App, *, live: bool = True, allow_major_upgrade: bool = False, tenant: str | None = None
) -> Any:
    from hosting.engine.locate import command
    from hosting.provider.driver import Driver

    command(app.state_dir)  # a missing engine is the first thing a user hears about
    return Driver(
        app.spec,
        state_dir=app.state_dir,
        base_dir=app.file_path.resolve().parent,
        backend=app.backend,
        passphrase=_passphrase(),
        on_step=_show_step if live else None,
        allow_major_upgrade=allow_major_upgrade,
        spec_file=app.file_path,
        tenant=tenant,
    )


UPGRADE_HELP = (
    "Allow PostgreSQL major upgrades (a database's `version:` raised): dump, restore into a "
    "new volume, check, switch; the old volume is kept until `backup prune`."
)


def _show_step(step: Any) -> None:
    # Plain lines on stderr: readable on a terminal and in CI logs alike. A terminal also
    # hears when a step starts, so a slow image pull or build is visibly in progress.
    if step.status == "started" and sys.stderr.isatty():
        click.echo(f"  … {step.op:<8} {step.kind:<9} {step.name}", err=True)
    elif step.status in ("done", "failed"):
        mark = SYMBOL.get(step.op, " ")
        tail = f" ({step.elapsed_s:.1f}s)" if step.elapsed_s else ""
        word = "FAILED " if step.status == "failed" else ""
        click.echo(f"  {mark} {word}{step.op:<8} {step.kind:<9} {step.name}{tail}", err=True)


def _tenant_filter(spec: Spec, tenant: str | None) -> None:
    if tenant is not None:
        limits.tenant_or_error(spec, tenant)


def _deployment(spec: Spec, ref: str) -> tuple[str, str, Any]:
    tid, _, did = ref.partition("/")
    if not did:
        raise UsageError(f"`{ref}` is not TENANT/DEPLOYMENT", "e.g. acme/shop")
    tenant = limits.tenant_or_error(spec, tid)
    if did not in tenant.deployments:
        known = ", ".join(tenant.deployments) or "none"
        raise NotFoundError(f"unknown deployment `{ref}`", f"{tid} has: {known}")
    return tid, did, tenant.deployments[did]


def refusals(app: App, tenant_filter: str | None) -> list[str]:
    """Why apply must not run, per tenant: over a plan limit, or storage at ≥ 100%."""
    spec = app.spec
    out: list[str] = []
    for tid, tenant in spec.tenants.items():
        if tenant_filter is not None and tid != tenant_filter:
            continue
        for use in limits.usage(spec, tenant).values():
            if use.used > use.allowed:
                out.append(
                    f"{tid}: Limit exceeded: {use.used}/{use.allowed} {limits.NOUN[use.kind]}"
                )
        reason = _storage_refusal(app, tid)
        if reason:
            out.append(f"{tid}: {reason}")
    return out


def _storage_refusal(app: App, tenant: str) -> str | None:
    try:
        from hosting.metering.alerts import storage_refusal
    except ImportError:  # metering not installed: no measurements, nothing to refuse
        return None
    if not app.store_path.exists():
        return None
    return storage_refusal(app.store_path, app.spec, tenant)


# -- plan -------------------------------------------------------------------------------------
FORMATS = click.Choice(["text", "json", "markdown"])


@cli.command()
@click.option("--detailed-exitcode", is_flag=True, help="Exit 2 when there are changes.")
@click.option("--format", "fmt", type=FORMATS, default="text")
@click.option("--tenant", help="Only this tenant's changes.")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also save the plan to FILE, for `hosting apply FILE` to apply exactly it.",
)
@click.option("--allow-major-upgrade", is_flag=True, help=UPGRADE_HELP)
@pass_app
def plan(
    app: App,
    detailed_exitcode: bool,
    fmt: str,
    tenant: str | None,
    out: Path | None,
    allow_major_upgrade: bool,
) -> None:
    """Preview: changes per resource, grouped by tenant and deployment, with plan usage and
    cost impact. A database's major upgrade is refused without --allow-major-upgrade."""
    from hosting.provider.changes import report
    from hosting.sources.build import source_builds

    spec = app.spec
    _tenant_filter(spec, tenant)
    # A source folder that cannot be built is told here, plainly, not from inside the engine.
    source_builds(spec, app.file_path.resolve().parent)
    driver = _driver(app, live=False, allow_major_upgrade=allow_major_upgrade, tenant=tenant)
    previous = driver.previous_outputs()
    result = driver.preview() if out is None else driver.preview_to_save(app.file_path, tenant)
    rep = report(spec, result.steps, previous, tenant)
    _attach_proration(app, rep)
    doc = plan_json(rep, result.migrations)
    _print_plan(doc, fmt)
    if out is not None:
        _save_plan_file(out, result, doc, tenant)
        click.echo(f"Saved the plan to {out}; `hosting apply {out}` applies exactly it.", err=True)
    if detailed_exitcode and rep.changed:
        raise click.exceptions.Exit(2)


def _print_plan(doc: dict[str, Any], fmt: str) -> None:
    if fmt == "json":
        echo_json(doc)
    else:
        click.echo(plan_text(doc, markdown=fmt == "markdown"), nl=fmt != "markdown")


def _save_plan_file(out: Path, result: Any, doc: dict[str, Any], tenant: str | None) -> None:
    from hosting.provider import saved_plan

    targets = [s.urn for s in result.targets if s.tenant in (tenant, None)] if tenant else []
    saved_plan.write(
        out, saved_plan.SavedPlan(result.fingerprint, doc, result.engine_plan, targets)
    )


@cli.command()
@click.argument("plan_file", metavar="FILE", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--format", "fmt", type=FORMATS, default="text")
def show(plan_file: Path, fmt: str) -> None:
    """Print a saved plan (`plan --out FILE`) again, as text, JSON or Markdown."""
    from hosting.provider import saved_plan

    saved = saved_plan.read(plan_file)
    if fmt == "text":
        f = saved.fingerprint
        scope = f", tenant {f.tenant} only" if f.tenant else ""
        click.echo(
            f"Saved plan for {f.spec_file} (sha256 {f.spec_sha256[:12]}), stack's last update: "
            f"{f.stack_update or 'none'}{scope}, made by hosting {f.tool_version} ({f.engine}).\n"
        )
    _print_plan(saved.report, fmt)


def _attach_proration(app: App, rep: Any, as_of: date | None = None) -> None:
    """Price each tenant's change with billing's own schedule, so plan and invoice agree."""
    from hosting.billing.impact import plan_impacts

    impacts = {i.tenant: i for i in plan_impacts(app.store_path, app.spec, as_of)}
    for t in rep.tenants:
        impact = impacts.get(t.tenant)
        if impact is not None and impact.change != "none":
            t.proration = impact


def _sync_subscriptions(app: App) -> None:
    """SPEC section 3: every apply records the file's plan changes in the billing history."""
    from hosting.billing.subscriptions import sync

    result = sync(app.store_path, app.spec)
    for change in result.changes:
        click.echo(f"  subscription {change.tenant}: {change.event} ({change.plan or '-'})")


@cli.command()
@click.argument(
    "plan_file", metavar="[FILE]", required=False, type=click.Path(dir_okay=False, path_type=Path)
)
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option("--tenant", help="Only this tenant's resources (and the edge).")
@click.option("--allow-major-upgrade", is_flag=True, help=UPGRADE_HELP)
@pass_app
def apply(
    app: App, plan_file: Path | None, yes: bool, tenant: str | None, allow_major_upgrade: bool
) -> None:
    """Make the spec real; refuses when a tenant is over a plan limit or at ≥ 100% storage.

    With FILE (from `plan --out FILE`), applies exactly that plan and asks nothing: it refuses,
    changing nothing, when hosting.yaml, the stack or a secret changed since the plan was made.
    A plan made with --allow-major-upgrade carries it: its apply needs no flag."""
    from hosting.provider.apply_lock import apply_lock

    spec = app.spec
    if plan_file is not None:
        if tenant is not None:
            raise UsageError(
                "apply FILE takes no --tenant: the saved plan has its own scope",
                "make the plan with `plan --tenant T --out FILE`",
            )
        with apply_lock(app.state_dir):
            _apply_saved(app, plan_file, allow_major_upgrade)
        return
    _tenant_filter(spec, tenant)
    _refuse_over_limits(app, tenant)
    driver = _driver(app, allow_major_upgrade=allow_major_upgrade, tenant=tenant)
    with apply_lock(app.state_dir):
        _build_sources(app, tenant)
        targets = None
        if tenant is not None or not yes:
            preview = driver.preview()
            if tenant is not None:
                targets = [s.urn for s in preview.targets if s.tenant in (tenant, None)]
            if not preview.changed:
                _no_changes(app, driver)
                return
            if not yes:
                click.echo(f"{len(preview.steps)} resources will change.", err=True)
                if not sys.stdin.isatty():
                    raise UsageError("apply needs confirmation", "pass --yes when not interactive")
                click.confirm("Apply?", abort=True)
        _report_applied(app, driver.up(targets))


def _build_sources(app: App, tenant: str | None) -> None:
    """`source:` deployments are built before the engine runs (issue 17): a failed build
    stops apply here, with the running version untouched. An image already built from the
    same content is not built again."""
    from hosting.sources.build import build_all

    def show(key: str, line: str) -> None:
        click.echo(f"  build {key} | {line}", err=True)

    built = build_all(
        app.spec,
        base_dir=app.file_path.resolve().parent,
        state_dir=app.state_dir.resolve(),
        tenant=tenant,
        on_line=show,
    )
    if app.spec.platform.target == "swarm":
        # on one engine the program builds them; a swarm's nodes need them first
        from hosting.sources.context_build import build_contexts

        built += build_contexts(
            app.spec,
            base_dir=app.file_path.resolve().parent,
            state_dir=app.state_dir.resolve(),
            tenant=tenant,
            on_line=show,
        )
    for key in built:
        click.echo(f"  built {key} (log: hosting logs {key} --build)", err=True)


def _refuse_over_limits(app: App, tenant: str | None) -> None:
    problems = refusals(app, tenant)
    if problems:
        raise LimitError(
            "apply refused before changing anything: " + "; ".join(problems),
            "raise the plan, remove deployments or free storage, then apply again",
        )


def _no_changes(app: App, driver: Any) -> None:
    # Routes can change without a resource changing (a domain just got verified).
    driver.load_edge()
    # After a reboot nothing changed in the stack, but mounts and firewall rules are gone.
    _warn(driver.prepare_host() + driver.guard_host())
    click.echo("No changes; edge routes reloaded.")
    _sync_subscriptions(app)


def _warn(warnings: list[str]) -> None:
    for warning in warnings:
        click.echo(f"warning: {warning}", err=True)


def _report_applied(app: App, result: Any) -> None:
    for line in result.upgraded:
        click.echo(f"  {line}", err=True)
    _warn(result.warnings)
    for node, images in sorted(result.images_loaded.items()):
        click.echo(f"  loaded onto node {node}: {', '.join(images)}", err=True)
    click.echo(f"Applied: {len(result.steps)} resources changed.")
    _sync_subscriptions(app)
    for key, value in sorted(result.outputs.items()):
        if isinstance(value, dict) and value.get("urls"):
            click.echo(f"  {key:<24} {' '.join(value['urls'])}")


def _apply_saved(app: App, path: Path, allow_major_upgrade: bool = False) -> None:
    """Check, under the apply lock, that the plan is what applying now would do; then let
    the engine hold every step to it. The major upgrades it shows are allowed: the plan was
    made with --allow-major-upgrade, else there would be none (the file is unchanged)."""
    from hosting.provider import saved_plan

    saved = saved_plan.read(path)
    migrated = any(t.get("migrations") for t in saved.report.get("tenants", []))
    driver = _driver(
        app,
        allow_major_upgrade=allow_major_upgrade or migrated,
        tenant=saved.fingerprint.tenant,
    )
    now = driver.fingerprint(app.file_path, saved.fingerprint.tenant)
    saved_plan.refuse_if_stale(path, saved.fingerprint, now)
    _refuse_over_limits(app, saved.fingerprint.tenant)
    _build_sources(app, saved.fingerprint.tenant)
    if not saved.report.get("changes"):
        _no_changes(app, driver)
        return
    engine_plan = app.state_dir / "work" / f"engine-plan-{os.getpid()}.json"
    fd = os.open(engine_plan, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(saved.engine_plan, f)
    try:
        result = driver.up(saved.targets or None, plan=engine_plan)
    finally:
        engine_plan.unlink(missing_ok=True)
    _report_applied(app, result)


@cli.command()
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option("--delete-data", is_flag=True, help="Also remove database and edge volumes.")
@click.option("--tenant", help="Only this tenant's resources.")
@pass_app
def destroy(app: App, yes: bool, delete_data: bool, tenant: str | None) -> None:
    """Remove what apply made; volumes stay unless --delete-data."""
    spec = app.spec
    _tenant_filter(spec, tenant)
    driver = _driver(app)
    if not yes:
        if not sys.stdin.isatty():
            raise UsageError("destroy needs confirmation", "pass --yes when not interactive")
        what = f"tenant {tenant}" if tenant else f"platform {spec.platform.name}"
        click.confirm(f"Destroy everything of {what}?", abort=True)
    if tenant is not None:
        # Destroying one tenant = applying the spec without it.
        from hosting.provider.driver import Driver

        rest = spec.model_copy(
            update={"tenants": {k: v for k, v in spec.tenants.items() if k != tenant}}
        )
        sub = Driver(
            rest,
            state_dir=driver.state_dir,
            base_dir=driver.base_dir,
            backend=app.backend,
            passphrase=driver.passphrase,
            on_step=_show_step,
        )
        result = sub.up()
    else:
        result = driver.destroy(delete_data=delete_data)
    _warn(result.warnings)
    kept = "" if delete_data else " (volumes kept; --delete-data removes them)"
    click.echo(f"Destroyed: {len(result.steps)} resources{kept}.")


@cli.command()
@pass_app
def refresh(app: App) -> None:
    """Read the real state of containers, networks and volumes back into the stack."""
    result = _driver(app).refresh()
    click.echo(f"Refreshed: {len(result.steps)} resources differed from the recorded state.")


@cli.command()
@click.option("--detailed-exitcode", is_flag=True, help="Exit 2 when something drifted.")
@json_option
@pass_app
def diff(app: App, detailed_exitcode: bool, as_json: bool) -> None:
    """Drift: what changed on the engine since the last apply (state left unchanged)."""
    result = _driver(app, live=False).drift()
    rows = [
        {
            "resource": s.name,
            "kind": s.kind,
            "tenant": s.tenant,
            "deployment": s.deployment,
            "drift": DRIFT_WORDS.get(s.op, s.op),
            "properties": list(s.diffs),
        }
        for s in result.steps
    ]
    if as_json:
        echo_json({"format_version": 1, "drift": bool(rows), "resources": rows})
    elif not rows:
        click.echo("No drift: the engine matches the state of the last apply.")
    else:
        for r in rows:
            props = f" ({', '.join(r['properties'])})" if r["properties"] else ""
            click.echo(f"  {r['drift']:<8} {r['kind']:<9} {r['resource']}{props}")
        click.echo(
            f"{len(rows)} resources drifted; `hosting plan` shows what apply would do about it."
        )
    if detailed_exitcode and rows:
        raise click.exceptions.Exit(2)


# A refresh's own words: a resource it would delete from the state is gone from the engine.
DRIFT_WORDS = {"delete": "gone", "update": "changed", "create": "appeared"}


# -- status / credentials / logs -------------------------------------------------------------
def _containers_of(spec: Spec, tenant: str, deployment: str) -> list[Any]:
    """The deployment's containers in replica order, each with the engine that runs it
    (hosting.provider.tasks): on one engine by the rule `status` uses too, labelled
    `hosting.*` and named `<platform>_<tenant>_<deployment>_<n>` (the labels do not name the
    platform; the name tells two platforms on one engine apart); on a swarm, its service's
    tasks on whichever node runs them."""
    from hosting.provider.tasks import deployment_containers

    return list(deployment_containers(spec, tenant, deployment))


def _where(spec: Spec) -> str:
    if spec.platform.target == "swarm":
        return f"on the swarm of the manager at {spec.platform.docker.host}"
    return f"on the engine at {spec.platform.docker.host}"


def _since(_ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    from hosting.dates import parse_since

    return None if value is None else parse_since(value)


@cli.command()
@click.option("--tenant", help="Only this tenant.")
@json_option
@pass_app
def status(app: App, tenant: str | None, as_json: bool) -> None:
    """Deployments: status (pending, building, running, stopped, suspended, failed), health,
    URLs, alerts."""
    from hosting.provider import runtime
    from hosting.provider.driver import verified_domains
    from hosting.sources.build import static_sites

    spec = app.spec
    _tenant_filter(spec, tenant)
    statuses = runtime.status(
        spec,
        verified_domains(spec, app.state_dir),
        app.state_dir,
        static_sites(spec, app.file_path.resolve().parent),
    )
    rows = [s for s in statuses if tenant is None or s.tenant == tenant]
    from hosting.metering.alerts import standing_alerts

    tenants = [tenant] if tenant is not None else list(spec.tenants)
    alerts = [a for t in tenants for a in standing_alerts(app.store_path, spec, t)]
    rows, suspended = _with_suspensions(app, rows, tenants)
    from hosting.backups.drills import backup_states

    backups = backup_states(spec, app.state_dir, app.store_path, tenants)
    replication = _replication(app, tenants)
    scaling = _scaling(app, tenants)
    if as_json:
        echo_json(
            {
                "deployments": rows,
                "alerts": alerts,
                "suspended": suspended,
                "backups": backups,
                "replication": replication,
                "scaling": scaling,
            }
        )
        return
    for a in alerts:
        click.echo(f"alert: {a.tenant} {a.kind} {a.level}: {a.message}")
    for s in suspended:
        click.echo(
            f"suspended: {s.tenant} since {s.suspended_on}, invoice {s.invoice_number} unpaid "
            "(its web and API answer 402 once applied)"
        )
    click.echo(
        table(
            ["Deployment", "Type", "Status", "Health", "Replicas", "URLs"],
            [
                [
                    f"{r.tenant}/{r.deployment}",
                    r.type,
                    r.status,
                    r.health,
                    f"{r.replicas_running}/{r.replicas_wanted}",
                    " ".join(r.urls),
                ]
                for r in rows
            ],
        )
    )
    for b in backups:  # each database's newest backup and whether it was ever restored
        click.echo(b.line())
    for r in replication:
        click.echo(
            f"replica {r['deployment']} {r['replica']}: {r['state']}"
            + (f", lag {r['lag_bytes']} bytes" if r["lag_bytes"] is not None else "")
            + (f" ({r['lag_s']:.1f} s)" if r["lag_s"] is not None else "")
        )
    for row in scaling:
        for e in row["events"]:
            click.echo(
                f"scaled {row['deployment']} {e['from']}→{e['to']} at {e['at']}: {e['reason']}"
            )


def _scaling(app: App, tenants: list[str]) -> list[dict[str, Any]]:
    """Each autoscaled deployment's bounds and its last scale events, newest first."""
    if app.spec.platform.target != "swarm":
        return []
    from hosting.metering.autoscale import recent_events

    out: list[dict[str, Any]] = []
    for tid in tenants:
        for did, dep in app.spec.tenants[tid].deployments.items():
            bounds = None if isinstance(dep, DatabaseDeployment) else dep.autoscale
            if bounds is None:
                continue
            out.append(
                {
                    "deployment": f"{tid}/{did}",
                    "min": bounds.min,
                    "max": bounds.max,
                    "cpu_target": bounds.cpu_target,
                    "events": recent_events(app.store_path, tid, did),
                }
            )
    return out


def _replication(app: App, tenants: list[str]) -> list[dict[str, Any]]:
    """Each read replica as its primary sees it (streaming or not, and its lag); with the
    primary down, what runs of the replicas, which stay readable."""
    from hosting.backups.pg import locate
    from hosting.databases.replication import replica_states
    from hosting.metering.engine import Engine

    spec = app.spec
    host = spec.platform.docker.host
    out: list[dict[str, Any]] = []
    for tid in tenants:
        for did, dep in spec.tenants[tid].deployments.items():
            if not isinstance(dep, DatabaseDeployment) or not dep.replicas or dep.stopped:
                continue
            ref = f"{tid}/{did}"
            try:
                target = locate(spec, Engine(host), tid, did)
                states = replica_states(host, target.container, target.user, target.dbname)
            except HostingError:
                down = "primary down: a running replica still answers reads"
                out += [
                    {"deployment": ref, "replica": f"replica_{i}", "state": down,
                     "lag_bytes": None, "lag_s": None}
                    for i in range(1, dep.replicas + 1)
                ]  # fmt: skip
                continue
            out += [
                {
                    "deployment": ref,
                    "replica": s.name,
                    "state": "streaming" if s.streaming else "not streaming",
                    "lag_bytes": s.lag_bytes,
                    "lag_s": s.lag_s,
                }
                for s in states
            ]
    return out


def _with_suspensions(app: App, rows: list[Any], tenants: list[str]) -> tuple[list[Any], list[Any]]:
    """A suspended tenant's web and API show `suspended` (issue 15), whatever still runs
    until the next apply stops it."""
    from dataclasses import replace

    from hosting import store
    from hosting.payments.suspension import open_suspension

    if not app.store_path.exists():
        return rows, []
    with store.connect(app.store_path, read_only=True) as conn:
        found = [s for t in tenants if (s := open_suspension(conn, t)) is not None]
    names = {s.tenant for s in found}
    out = [
        replace(r, status="suspended") if r.tenant in names and r.type != "database" else r
        for r in rows
    ]
    return out, found


@cli.command()
@click.argument("ref", metavar="TENANT/DEPLOYMENT")
@click.option("--show-secrets", is_flag=True, help="Print the password.")
@json_option
@pass_app
def credentials(app: App, ref: str, show_secrets: bool, as_json: bool) -> None:
    """Database connection settings (the password only with --show-secrets)."""
    spec = app.spec
    tid, did, dep = _deployment(spec, ref)
    if not isinstance(dep, DatabaseDeployment):
        raise UsageError(f"`{ref}` is a {dep.type} deployment, not a database")
    # The container is the truth of what the database accepts; without one there is nothing
    # to ask (and the engine itself is fine: it just listed what it runs).
    found = _containers_of(spec, tid, did)
    if not found:
        raise NotFoundError(
            f"{ref} has no container {_where(spec)}",
            "it has not been applied: run `hosting apply`; `hosting status` shows what runs",
        )
    primary = found[0]
    if not primary.running:
        click.echo(f"note: {ref} is not running; these are its settings", err=True)
    env, published = _database_env(primary)
    port: int | None = published
    if spec.platform.target == "swarm":
        from hosting.stacks.containers import POSTGRES_PORT

        # published on no port: its tenant's network reaches it by the name apps use
        host, port = names.container_name(spec.platform.name, tid, did, 0), POSTGRES_PORT
    else:
        host = str(spec.platform.database_bind)
    user, password = _current_login(app, tid, did, env)
    dbname = names.database_name(did)
    shown = password if show_secrets else "********"
    info = {
        "deployment": ref,
        "host": host,
        "port": port,
        "user": user,
        "password": shown,
        "name": dbname,
        "url": f"postgresql://{user}:{shown}@{host}:{port}/{dbname}",
    }
    if as_json:
        echo_json(info)
        return
    for key in ("host", "port", "user", "password", "name", "url"):
        click.echo(f"{key + ':':<10} {info[key]}")
    if spec.platform.target == "swarm":
        click.echo(f"(on a swarm {ref} is reached from its tenant's network only)", err=True)
    if not show_secrets:
        click.echo("(password hidden; --show-secrets prints it)", err=True)


def _database_env(placed: Any) -> tuple[dict[str, str], int | None]:
    """The database container's POSTGRES_* settings and its published port, asked of the
    engine that runs it. A swarm task has its password in a secret file
    (POSTGRES_PASSWORD_FILE): read there."""
    from hosting.databases.local import run_shell
    from hosting.metering.engine import Engine

    info = Engine(placed.host).inspect(placed.container.id)
    env = dict(
        item.split("=", 1) for item in (info.get("Config") or {}).get("Env") or [] if "=" in item
    )
    secret = env.get("POSTGRES_PASSWORD_FILE")
    if secret and "POSTGRES_PASSWORD" not in env and placed.running:
        # unreadable: shown as it is, without one, rather than not at all
        with contextlib.suppress(HostingError):
            env["POSTGRES_PASSWORD"] = run_shell(
                placed.host, placed.container.id, 'cat "$1"', secret
            ).strip()
    bindings = ((info.get("HostConfig") or {}).get("PortBindings") or {}).get("5432/tcp") or []
    return env, int(bindings[0]["HostPort"]) if bindings else None


def _current_login(app: App, tid: str, did: str, env: dict[str, str]) -> tuple[str, str]:
    """The login apps use now. After `secrets rotate` it is no longer the container's
    POSTGRES_USER/PASSWORD: the stack's outputs (of the last apply) have it, readable with the
    passphrase. Without one, the container's are given only while its password is valid."""
    from hosting.provider.driver import passphrase_from_env

    key = f"{tid}/{did}"
    if passphrase_from_env() is not None:
        try:
            applied = _driver(app, live=False).previous_outputs().get(key)
        except ProviderError:  # no engine here: what the container says, checked below
            applied = None
        if isinstance(applied, dict) and applied.get("user") and applied.get("password"):
            return str(applied["user"]), str(applied["password"])
    user, password = env.get("POSTGRES_USER", ""), env.get("POSTGRES_PASSWORD", "")
    if user and _password_retired(app, tid, did, user):
        raise UsageError(
            f"the first password of {key} was retired by `hosting secrets rotate`",
            "set HOSTING_PASSPHRASE: the current login is read from the stack",
        )
    return user, password


def _password_retired(app: App, tid: str, did: str, owner: str) -> bool:
    from hosting.backups.pg import locate
    from hosting.databases.local import run_sql
    from hosting.databases.roles import literal
    from hosting.metering.engine import Engine

    try:
        target = locate(app.spec, Engine(app.spec.platform.docker.host), tid, did)
        sql = f"SELECT rolpassword IS NULL FROM pg_authid WHERE rolname = {literal(owner)}"
        host = target.host or app.spec.platform.docker.host
        return run_sql(host, target.container, owner, target.dbname, sql).strip() == "t"
    except HostingError:  # not running: nothing to ask, its settings are shown as they are
        return False


def _echo_raw(text: str) -> None:
    click.echo(text, nl=False)


@cli.command()
@click.argument("ref", metavar="TENANT/DEPLOYMENT")
@click.option("--follow", "-f", is_flag=True, help="Keep printing new lines.")
@click.option(
    "--build",
    is_flag=True,
    help="The last image build's log instead (with --follow: until the running build ends).",
)
@click.option(
    "--since",
    callback=_since,
    help="Only lines newer than this (e.g. 10m, 2h, 2026-11-05T10:00:00Z).",
)
@pass_app
def logs(app: App, ref: str, follow: bool, build: bool, since: str | None) -> None:
    """App logs of every replica (prefixed by replica), or the build log."""
    from hosting.provider.runtime import docker_env

    spec = app.spec
    tid, did, dep = _deployment(spec, ref)
    if build:
        from hosting.sources.build import building_marker, log_path
        from hosting.sources.logs import follow as follow_log

        path = log_path(app.state_dir, tid, did)
        if not path.exists():
            raise NotFoundError(
                f"no build log for {ref}",
                "only deployments with `build:` or `source:` have one, after apply",
            )
        if follow:  # until the running build ends (at once when none runs)
            follow_log(path, building_marker(app.state_dir, tid, did), _echo_raw)
        else:
            click.echo(path.read_text(), nl=False)
        return
    if not isinstance(dep, DatabaseDeployment) and dep.static is not None:
        raise UsageError(
            f"{ref} is a static site: the edge serves it, and it has no container or logs of "
            "its own",
            f"its requests are in the edge's access log, {app.state_dir / 'edge/logs/access.log'}",
        )
    found = _containers_of(spec, tid, did)
    if not found:
        raise NotFoundError(
            f"{ref} has no containers {_where(spec)}",
            "it has not been applied: run `hosting apply`; `hosting status` shows what runs",
        )
    containers = [p.container.name for p in found]
    count = len(containers)
    args = ["logs", "--timestamps"]
    if since:
        args += ["--since", since]
    if follow:
        args.append("--follow")
    procs = [
        (
            i,
            subprocess.Popen(
                # -H: the engine that runs it (a swarm task's node); by id, its name is local
                ["docker", "-H", p.host, *args, p.container.id],
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                env=docker_env(spec),
            ),
        )
        for i, p in enumerate(found)
    ]
    lock = threading.Lock()

    def pump(i: int, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            with lock:
                click.echo(f"[{i}] {line}" if count > 1 else line, nl=False)

    threads = [threading.Thread(target=pump, args=p, daemon=True) for p in procs]
    for t in threads:
        t.start()
    try:
        for t in threads:
            t.join()
    finally:
        for _, p in procs:
            p.terminate()
    failed = [containers[i] for i, p in procs if p.wait() not in (0, -15)]
    if failed:
        raise NotFoundError(
            f"no logs for {', '.join(failed)}", "is it applied? `hosting status` shows it"
        )


# -- engine -----------------------------------------------------------------------------------
@cli.group()
def engine() -> None:
    """The Pulumi engine that plan and apply drive: build it from Go modules, or install it."""


@engine.command("build")
@pass_app
def engine_build(app: App) -> None:
    """Build the pinned Pulumi CLI and docker plugin from Go modules (needs Go)."""
    from hosting.engine.build import build
    from hosting.engine.pins import CLI_VERSION, DOCKER_PLUGIN_VERSION

    built = build(app.state_dir, progress=lambda what: click.echo(f"  {what} …", err=True))
    how = "already built (cache hit)" if built.cached else "built"
    click.echo(
        f"{how}: pulumi v{CLI_VERSION} at {built.cli}, "
        f"docker plugin v{DOCKER_PLUGIN_VERSION} at {built.plugin}"
    )


@engine.command("install")
@pass_app
def engine_install(app: App) -> None:
    """Download the pinned Pulumi CLI and docker plugin (needs the download site)."""
    from hosting.engine.install import install
    from hosting.engine.pins import CLI_VERSION, DOCKER_PLUGIN_VERSION

    path = install(app.state_dir)
    click.echo(
        f"installed pulumi v{CLI_VERSION} and docker plugin v{DOCKER_PLUGIN_VERSION} at {path}"
    )
