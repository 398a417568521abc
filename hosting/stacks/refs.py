"""`${deployment.field}` references in env values, resolved per tenant.

A value that references a password (or a database URL, which contains it) is secret.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from hosting.databases.replication import read_alias
from hosting.spec import names
from hosting.spec.models import REF_RE, DatabaseDeployment, Spec
from hosting.stacks.containers import POSTGRES_PORT
from hosting.stacks.pooler import pooler_address
from hosting.stacks.settings import ProgramSettings

SECRET_FIELDS = frozenset({"password", "url", "direct_url", "read_url"})


@dataclass(frozen=True)
class Export:
    value: str
    secret: bool


def exports(spec: Spec, settings: ProgramSettings, tenant: str) -> dict[str, dict[str, Export]]:
    """What each deployment of `tenant` exports, as seen from inside its tenant network."""
    platform = spec.platform.name
    out: dict[str, dict[str, Export]] = {}
    for did, dep in spec.tenants[tenant].deployments.items():
        if isinstance(dep, DatabaseDeployment):
            access = settings.databases[f"{tenant}/{did}"]
            host = names.container_name(platform, tenant, did, 0)
            db = names.database_name(did)
            # Apps log in as the current login role (see hosting.databases.roles).
            user, password = access.login, access.current_password
            direct = f"postgresql://{user}:{password}@{host}:{POSTGRES_PORT}/{db}"
            url = direct
            if dep.pooling is not None:  # apps go through PgBouncer; migrations use direct_url
                url = f"postgresql://{user}:{password}@{pooler_address(platform, tenant, did)}/{db}"
            if dep.replicas:  # Docker's DNS answers the alias with each replica in turn
                read_host = read_alias(platform, tenant, did)
                read_url = f"postgresql://{user}:{password}@{read_host}:{POSTGRES_PORT}/{db}"
            out[did] = {
                "host": Export(host, False),
                "port": Export(str(POSTGRES_PORT), False),
                "user": Export(user, False),
                "password": Export(password, True),
                "name": Export(db, False),
                "url": Export(url, True),
                "direct_url": Export(direct, True),
            }
            if dep.replicas:
                out[did]["read_url"] = Export(read_url, True)
        else:
            host = names.hostname(tenant, did, dep.type, spec.platform.domain)
            out[did] = {"url": Export(f"https://{host}", False)}
    return out


def resolve_env(
    env: Mapping[str, str], table: Mapping[str, Mapping[str, Export]]
) -> tuple[dict[str, str], frozenset[str]]:
    """Env values with references replaced, and the names whose values became secret."""
    resolved: dict[str, str] = {}
    secret: set[str] = set()
    for name, value in env.items():
        hit_secret = False

        def sub(match: object, _name: str = name) -> str:
            nonlocal hit_secret
            dep, fld = match.group(1), match.group(2)  # type: ignore[attr-defined]
            export = table[dep][fld]
            hit_secret = hit_secret or export.secret
            return export.value

        resolved[name] = REF_RE.sub(sub, value)
        if hit_secret:
            secret.add(name)
    return resolved, frozenset(secret)


def login_dependants(spec: Spec, tenant: str, database: str) -> list[str]:
    """The deployments of `tenant` whose env names `database`'s login (user, password or url):
    the ones an apply rolls after `secrets rotate`."""
    out = []
    for did, dep in spec.tenants[tenant].deployments.items():
        if isinstance(dep, DatabaseDeployment):
            continue
        for value in dep.env.values():
            if any(
                m.group(1) == database and m.group(2) in ("user", *SECRET_FIELDS)
                for m in REF_RE.finditer(value)
            ):
                out.append(did)
                break
    return out
