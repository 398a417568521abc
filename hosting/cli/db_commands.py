"""Database commands: db promote."""

from __future__ import annotations

import click

from hosting.cli import cli
from hosting.cli.context import App
from hosting.errors import ProviderError, UsageError

pass_app = click.make_pass_decorator(App)


@cli.group()
def db() -> None:
    """Databases' read replicas: promote one."""


@db.command("promote")
@click.argument("ref", metavar="TENANT/DATABASE")
@click.option("--replica", type=click.IntRange(min=1), default=1, show_default=True,
              help="Which read replica (1…N).")  # fmt: skip
@click.option("--yes", is_flag=True, help="Do it (it cannot be undone).")
@pass_app
def promote(app: App, ref: str, replica: int, yes: bool) -> None:
    """Make a read replica a read-write server of its own, for when the primary is lost.

    The replica stops following the primary and accepts writes at its own name on the
    tenant's network (and the read alias). The apps' `url` still names the primary: point
    them at the promoted copy, or restore the primary from it. Audited."""
    from hosting.cli.deploy_commands import _deployment
    from hosting.databases.local import run_sql
    from hosting.databases.replication import PROMOTE_SQL
    from hosting.metering.engine import Engine
    from hosting.spec import names
    from hosting.spec.models import DatabaseDeployment
    from hosting.stacks.containers import database_user

    tid, did, dep = _deployment(app.spec, ref)
    if not isinstance(dep, DatabaseDeployment):
        raise UsageError(f"`{ref}` is a {dep.type} deployment, not a database")
    if replica > dep.replicas:
        have = f"has {dep.replicas}" if dep.replicas else "has no read replicas"
        raise UsageError(f"{ref} {have}: there is no replica {replica}",
                         "give `replicas: N` in hosting.yaml and apply first")  # fmt: skip
    name = names.container_name(app.spec.platform.name, tid, did, replica)
    if not yes:
        raise UsageError(
            f"promoting {name} makes it stop following the primary of {ref} for good",
            "add --yes to go ahead",
        )
    host = app.spec.platform.docker.host
    found = [
        c
        for c in Engine(host).containers(all=False)
        if (c.tenant, c.deployment, c.kind, c.name) == (tid, did, "replica", name)
    ]
    if not found:
        raise ProviderError(f"replica {replica} of {ref} ({name}) is not running",
                            "`hosting status` shows what runs; apply to start it")  # fmt: skip
    owner, dbname = database_user(tid, did), names.database_name(did)
    if run_sql(host, name, owner, dbname, "SELECT pg_is_in_recovery()").strip() != "t":
        raise UsageError(f"{name} is already a read-write server", "nothing to do")
    done = run_sql(host, name, owner, dbname, PROMOTE_SQL).strip()
    if done != "t":
        raise ProviderError(f"{name} did not finish its promotion within 60 s",
                            "`hosting logs` shows its log; try again")  # fmt: skip
    click.echo(
        f"{name} is now a read-write server of its own. The apps' ${{{did}.url}} still "
        f"names the primary: point them at {name}, or restore the primary from it."
    )
