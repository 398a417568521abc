"""Commands that read only the file: init, validate, schema, plans, can-deploy."""

from __future__ import annotations

import json
import os
import shlex
from decimal import Decimal
from importlib import resources
from typing import Any

import click

from hosting.cli import cli
from hosting.cli.context import App
from hosting.cli.output import echo_json, json_option, table
from hosting.errors import SpecError, UsageError
from hosting.spec import limits, names
from hosting.spec.models import DatabaseDeployment, Plan, Spec
from hosting.spec.schema import json_schema

pass_app = click.make_pass_decorator(App)


@cli.command()
@click.option("--force", is_flag=True, help="Overwrite an existing file.")
@pass_app
def init(app: App, force: bool) -> None:
    """Write a commented starter hosting.yaml."""
    path = app.file_path
    if path.exists() and not force:
        raise UsageError(f"{path} already exists", "pass --force to overwrite it")
    text = resources.files("hosting.spec").joinpath("starter.yaml").read_text()
    path.write_text(text)
    # The next step must work as written: it names the file unless hosting finds it anyway.
    given = app.file not in ("hosting.yaml", os.environ.get("HOSTING_FILE"))
    where = f"-f {shlex.quote(app.file)} " if given else ""
    click.echo(f"wrote {path}; next: hosting {where}validate")


@cli.command()
@json_option
@pass_app
def validate(app: App, as_json: bool) -> None:
    """Check the file; print tenants, deployments and plan usage."""
    try:
        spec = app.spec
    except SpecError as exc:
        if not as_json:
            raise
        # Editors and CI read the errors from the JSON: it is the whole answer.
        echo_json({"valid": False, "file": str(app.file_path), "errors": [
            p.as_dict() for p in exc.errors
        ]})  # fmt: skip
        raise click.exceptions.Exit(1) from None
    summary = validation_summary(spec)
    if as_json:
        echo_json({"valid": True, "file": str(app.file_path), **summary})
        return
    tenants = summary["tenants"]
    deployments = sum(len(t["deployments"]) for t in tenants)
    counts = f"{_count(len(tenants), 'tenant')}, {_count(deployments, 'deployment')}"
    click.echo(f"{app.file_path}: valid ({counts})")
    for t in tenants:
        use = ", ".join(
            f"{limits.NOUN[k]} {u['used']}/{u['allowed']}" for k, u in t["usage"].items()
        )
        click.echo(f"\n{t['id']} — {t['name']} · plan {t['plan']} ({t['billing_cycle']}) · {use}")
        for d in t["deployments"]:
            state = " (stopped)" if d["stopped"] else ""
            where = d["hostname"] or f"PostgreSQL on {spec.platform.database_bind}"
            click.echo(f"  {d['id']:<16} {d['type']:<9} {where}{state}")


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def validation_summary(spec: Spec) -> dict[str, Any]:
    out = []
    for tid, tenant in spec.tenants.items():
        use = limits.usage(spec, tenant)
        deps = []
        for did, dep in tenant.deployments.items():
            deps.append(
                {
                    "id": did,
                    "type": dep.type,
                    # Databases are reached on platform.database_bind, not through the edge.
                    "hostname": None
                    if isinstance(dep, DatabaseDeployment)
                    else names.hostname(tid, did, dep.type, spec.platform.domain),
                    "stopped": dep.stopped,
                    "domains": [] if isinstance(dep, DatabaseDeployment) else list(dep.domains),
                }
            )
        out.append(
            {
                "id": tid,
                "name": tenant.name,
                "plan": tenant.plan,
                "billing_cycle": tenant.billing_cycle,
                "usage": {k: {"used": u.used, "allowed": u.allowed} for k, u in use.items()},
                "deployments": deps,
            }
        )
    return {"tenants": out}


@cli.command()
def schema() -> None:
    """Print the JSON Schema of hosting.yaml (for editors and linters)."""
    click.echo(json.dumps(json_schema(), indent=2))


def _money(value: Decimal) -> str:
    return "$0" if value == 0 else f"${value:.2f}"


def _limit(plan: Plan, field: str, unit: str) -> str:
    if plan.limits is None:
        return "Custom"
    value = getattr(plan.limits, field)
    if field == "memory_mb":
        return f"{value // 1024} GB" if value % 1024 == 0 else f"{value} MB"
    if field == "cpus":
        text = f"{value:g}"
        return f"{text} core" if value == 1 else f"{text} cores"
    return f"{value} {unit}"


@cli.command()
@json_option
@pass_app
def plans(app: App, as_json: bool) -> None:
    """The plan catalog (the product document's table, with the file's overrides)."""
    catalog = app.spec.plans
    if as_json:
        echo_json({"plans": [p.model_dump(mode="python") for p in catalog.values()]})
        return
    rows = [
        [
            p.name.capitalize(),
            _money(p.price_monthly),
            f"{p.storage_gb} GB",
            f"{p.bandwidth_gb} GB",
            p.databases,
            p.apis,
            p.websites,
        ]
        for p in catalog.values()
    ]
    click.echo(table(["Plan", "Price/mo", "Storage", "Bandwidth", "DBs", "APIs", "Sites"], rows))
    click.echo()
    rows = [
        [
            p.name.capitalize(),
            _money(p.price_yearly),
            "yes" if p.custom_domain else "no",
            "yes" if p.ssl_certificate else "no",
            _limit(p, "cpus", ""),
            _limit(p, "memory_mb", ""),
            _limit(p, "disk_io_mbps", "MB/s"),
            _limit(p, "network_mbps", "Mbps"),
        ]
        for p in catalog.values()
    ]
    headers = ["Plan", "Price/yr", "Custom domain", "SSL", "CPU", "Memory", "Disk I/O", "Network"]
    click.echo(table(headers, rows))


@cli.command("can-deploy")
@click.argument("tenant")
@click.argument("kind", metavar="TYPE", type=click.Choice(["web", "api", "database"]))
@json_option
@pass_app
def can_deploy(app: App, tenant: str, kind: str, as_json: bool) -> None:
    """Whether TENANT may add a deployment of TYPE; if not, why."""
    decision = limits.can_deploy(app.spec, tenant, kind)
    if decision.can_deploy:  # the product: at >= 100% storage, no new deployments
        from dataclasses import replace

        from hosting.metering.alerts import storage_refusal

        refusal = storage_refusal(app.store_path, app.spec, tenant)
        if refusal:
            decision = replace(decision, can_deploy=False, reason=refusal)
    if as_json:
        echo_json(
            {
                "tenant": decision.tenant,
                "type": decision.kind,
                "can_deploy": decision.can_deploy,
                "reason": decision.reason,
                "used": decision.used,
                "allowed": decision.allowed,
            }
        )
    elif decision.can_deploy:
        click.echo(f"yes ({decision.used}/{decision.allowed} {limits.NOUN[kind]} used)")
    else:
        click.echo(f"no: {decision.reason}")
    if not decision.can_deploy:
        raise click.exceptions.Exit(1)
