"""What the program exports per deployment (the stack's outputs that `plan`, `status` and
`credentials` read), the same for every target."""

from __future__ import annotations

import pulumi

from hosting.spec import names
from hosting.spec.models import ApiDeployment, DatabaseDeployment, WebDeployment
from hosting.stacks.settings import DatabaseAccess, ProgramSettings


def status_of(
    tenant: str, dep: WebDeployment | ApiDeployment | DatabaseDeployment, settings: ProgramSettings
) -> str:
    status = "stopped" if dep.stopped else "running"
    if status == "running" and tenant in settings.suspended and dep.type != "database":
        return "suspended"  # unpaid: not run, the edge answers 402
    return status


def urls_of(
    tenant: str,
    deployment: str,
    dep: WebDeployment | ApiDeployment,
    domain: str,
    settings: ProgramSettings,
) -> list[str]:
    hostname = names.hostname(tenant, deployment, dep.type, domain)
    custom = [d for d in dep.domains if d in settings.verified_domains]
    return [f"https://{h}" for h in (hostname, *custom)]


def export_database(
    key: str, deployment: str, access: DatabaseAccess, status: str, host: str, port: int
) -> None:
    """Where and as whom the database is reached; the password as a Pulumi secret."""
    pulumi.export(
        key,
        {
            "type": "database",
            "status": status,
            "host": host,
            "port": port,
            "user": access.login,
            "password": pulumi.Output.secret(access.current_password),
            "name": names.database_name(deployment),
        },
    )
