"""After the engine's up: each pooled database's login role gets its pooler's SCRAM verifier.

PgBouncer logs in to the server with its client's SCRAM proof (pass-through), which the
server accepts only when it stores the verifier the pooler holds (hosting.stacks.pooler). The
statement runs on the server's local socket with the verifier on stdin (never an argv), and
sets what is already set on every later apply (the verifier is stable).
"""

from __future__ import annotations

import time

from hosting.databases.local import run_sql
from hosting.errors import HostingError
from hosting.spec import names
from hosting.spec.models import DatabaseDeployment, Spec
from hosting.stacks.pooler import pooled_verifier, server_verifier_sql
from hosting.stacks.settings import ProgramSettings

STARTUP_WAIT_S = 60.0  # a new database runs initdb before its socket answers


def sync_verifiers(
    spec: Spec, settings: ProgramSettings, *, wait_s: float = STARTUP_WAIT_S
) -> list[str]:
    """Returns warnings: a database that did not answer keeps its pooler unable to log in
    until the next apply."""
    warnings = []
    for tid, tenant in spec.tenants.items():
        for did, dep in tenant.deployments.items():
            if not isinstance(dep, DatabaseDeployment) or dep.pooling is None or dep.stopped:
                continue
            key = f"{tid}/{did}"
            access = settings.databases[key]
            sql = server_verifier_sql(access.login, pooled_verifier(key, access.current_password))
            container = names.container_name(spec.platform.name, tid, did, 0)
            deadline = time.monotonic() + wait_s
            while True:
                try:
                    run_sql(
                        spec.platform.docker.host,
                        container,
                        access.user,
                        names.database_name(did),
                        sql,
                    )
                    break
                except HostingError as exc:
                    if time.monotonic() >= deadline:
                        warnings.append(
                            f"{key}: its pooler cannot log in yet ({exc.message}); "
                            "the next apply gives the server the pooler's verifier"
                        )
                        break
                    time.sleep(1)
    return warnings
