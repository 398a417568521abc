"""PgBouncer in front of a database (`pooling:`, issue 12): its container, config and secret.

Authentication is SCRAM end to end, and no password exists anywhere on the pooler's side:
its auth file holds the login's SCRAM verifier, and PgBouncer logs in to the server with the
proof of the client it serves (SCRAM pass-through). That works only when the server stores the
very same verifier (salt, iterations, keys), so the verifier's salt is derived from the
password (the same password gives the same verifier on every run: no churn, and a plan shows
a change only on rotation), and apply sets the role's verifier to it (`server_verifier_sql`).

The config reaches the container as host files bind-mounted read-only, one file each, from a
directory only the apply user can enter: not in env, argv or labels (`docker inspect`), and
the engine cannot upload into a read-only root. The verifier is secret material (it lets a
listener who also saw one login brute-force nothing, but it would let a server impersonator
accept the client): the program keeps it as a Pulumi secret.
"""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path

from hosting.databases.roles import ident, literal
from hosting.databases.scram import verifier
from hosting.spec import names
from hosting.spec.models import DatabaseDeployment, Limits, Pooling, Spec
from hosting.stacks.containers import (
    POSTGRES_PORT,
    ContainerSpec,
    Health,
    Mount,
    NetworkAttachment,
)
from hosting.stacks.settings import ProgramSettings

POOLER_PORT = 6432  # PgBouncer's own default
KIND = "pooler"  # its hosting.type label; hosting.deployment names the database it serves
CONFIG_DIR = "/etc/pgbouncer"
SOCKET_DIR = "/tmp"  # the admin console's unix socket, for the metering agent (docker exec)
# The image's user (Debian's postgres): PgBouncer refuses to run as root. The admin console
# trusts it on the local socket (peer), and only for SHOW commands (stats_users).
CONSOLE_USER = "postgres"
# pg_isready on the console as the console user: a login it is allowed, so nothing is logged.
HEALTH_TEST = (
    "CMD", "pg_isready", "-q", "-h", SOCKET_DIR, "-p", str(POOLER_PORT),
    "-U", CONSOLE_USER, "-d", "pgbouncer",
)  # fmt: skip
MEMORY_MB = 64  # a few kB per client: 8,000 clients fit with room to spare
MAX_CPUS = 1.0  # one process, one core at most


def pooler_name(platform: str, tenant: str, deployment: str) -> str:
    return f"{platform}_{tenant}_{deployment}_pooler"


def pooler_address(platform: str, tenant: str, deployment: str) -> str:
    """host:port on the tenant's network."""
    return f"{pooler_name(platform, tenant, deployment)}:{POOLER_PORT}"


def pooled_verifier(key: str, password: str) -> str:
    """The SCRAM verifier both the pooler and the server hold for this login. Its salt comes
    from the password and the database's key ("tenant/deployment"): unique per database, and
    the same on every run. Passwords here are 256-bit random, so a derived salt gives away
    nothing a random one would keep."""
    salt = hmac.new(password.encode(), f"hosting pooler salt v1\0{key}".encode(), hashlib.sha256)
    return verifier(password, salt.digest()[:16])


def server_verifier_sql(login: str, verifier_text: str) -> str:
    """Give the server's role the pooler's verifier (PostgreSQL stores a verifier it is given
    as it is). A failing statement is not logged with its text."""
    return (
        "SET LOCAL log_min_error_statement = panic;\n"
        f"ALTER ROLE {ident(login)} PASSWORD {literal(verifier_text)};\n"
    )


def config_ini(platform: str, tenant: str, deployment: str, pooling: Pooling) -> str:
    db = names.database_name(deployment)
    server = names.container_name(platform, tenant, deployment, 0)
    return "\n".join(
        [
            "[databases]",
            f"{db} = host={server} port={POSTGRES_PORT} dbname={db}",
            "",
            "[pgbouncer]",
            "listen_addr = *",
            f"listen_port = {POOLER_PORT}",
            f"unix_socket_dir = {SOCKET_DIR}",
            "auth_type = hba",
            f"auth_hba_file = {CONFIG_DIR}/hba.txt",
            f"auth_file = {CONFIG_DIR}/userlist.txt",
            f"stats_users = {CONSOLE_USER}",
            f"pool_mode = {pooling.mode}",
            f"max_client_conn = {pooling.max_client_conn}",
            f"default_pool_size = {pooling.default_pool_size}",
            # Drivers set these at startup; PgBouncer would refuse the connection otherwise.
            "ignore_startup_parameters = extra_float_digits,options",
            # One line per connection would fill the log (10 MB, 3 files) at a few hundred per
            # second; SHOW STATS and the metering agent count them instead.
            "log_connections = 0",
            "log_disconnections = 0",
            "",
        ]
    )


HBA = (
    # the metering agent, inside the container, as the image's user: SHOW commands only
    f"local pgbouncer {CONSOLE_USER} peer\n"
    # the console, and its user, are never reachable over the network
    "host pgbouncer all 0.0.0.0/0 reject\n"
    "host pgbouncer all ::/0 reject\n"
    f"host all {CONSOLE_USER} 0.0.0.0/0 reject\n"
    f"host all {CONSOLE_USER} ::/0 reject\n"
    "host all all 0.0.0.0/0 scram-sha-256\n"
    "host all all ::/0 scram-sha-256\n"
)


def _quoted(name: str) -> str:
    # PgBouncer's auth file quotes like SQL identifiers: a `"` inside is doubled.
    return '"' + name.replace('"', '""') + '"'


def userlist(key: str, login: str, password: str) -> str:
    """The login's verifier, and the console user's: PgBouncer admits only users it lists,
    even by peer. Nobody knows the console user's password (a keyed hash of the database's,
    for a file that stays the same run after run), and hba.txt refuses it over the network."""
    console = hmac.new(password.encode(), f"hosting pooler console\0{key}".encode(), "sha256")
    return (
        f"{_quoted(login)} {_quoted(pooled_verifier(key, password))}\n"
        f"{_quoted(CONSOLE_USER)} {_quoted(pooled_verifier(key, console.hexdigest()))}\n"
    )


def host_dir(state_dir: Path, tenant: str, deployment: str) -> Path:
    return (state_dir / "pooler" / f"{tenant}_{deployment}").resolve()


def pooler_container(
    *,
    platform: str,
    tenant: str,
    deployment: str,
    image: str,
    limits: Limits,
    pooling: Pooling,
    key: str,
    login: str,
    password: str,
    state_dir: Path,
    io_device: str | None = None,
) -> ContainerSpec:
    """PgBouncer on its tenant's network only, nothing published."""
    name = pooler_name(platform, tenant, deployment)
    folder = host_dir(state_dir, tenant, deployment)
    ini = config_ini(platform, tenant, deployment, pooling)
    files = {
        f"{folder}/pgbouncer.ini": ini,
        f"{folder}/hba.txt": HBA,
        f"{folder}/userlist.txt": userlist(key, login, password),
    }
    # The engine does not see the files: what they say, minus the verifier, is in the env,
    # so a change of settings or login (a rotation) replaces the container, which reads them
    # afresh. The verifier follows the login: a new password comes with a new login role.
    digest = hashlib.sha256(f"{ini}\0{HBA}\0{login}".encode()).hexdigest()[:16]
    return ContainerSpec(
        name=name,
        image=image,
        tenant=tenant,
        deployment=deployment,
        kind=KIND,
        memory_mb=min(MEMORY_MB, limits.memory_mb),
        cpus=min(MAX_CPUS, limits.cpus),
        disk_io_mbps=limits.disk_io_mbps,
        io_device=io_device,
        env={"HOSTING_POOLER_CONFIG": digest},
        command=("/usr/sbin/pgbouncer", f"{CONFIG_DIR}/pgbouncer.ini"),
        networks=(NetworkAttachment(names.network_name(platform, tenant), (name,)),),
        mounts=tuple(
            Mount(f"{CONFIG_DIR}/{Path(path).name}", path, "bind", True) for path in files
        ),
        tmpfs={SOCKET_DIR: "rw,noexec,nosuid,size=16m"},
        host_files=files,
        secret_host_files=True,
        health=Health(HEALTH_TEST, 10, 5, 5, 10),
    )


def container_for(
    spec: Spec, settings: ProgramSettings, tenant: str, deployment: str, limits: Limits
) -> ContainerSpec:
    """The pooler of database `tenant/deployment`, which gives `pooling:`."""
    dep = spec.tenants[tenant].deployments[deployment]
    assert isinstance(dep, DatabaseDeployment) and dep.pooling is not None
    key = f"{tenant}/{deployment}"
    access = settings.databases[key]
    return pooler_container(
        platform=spec.platform.name,
        tenant=tenant,
        deployment=deployment,
        image=spec.platform.images.pgbouncer,
        limits=limits,
        pooling=dep.pooling,
        key=key,
        login=access.login,
        password=access.current_password,
        state_dir=settings.state_dir,
        io_device=settings.io_device,
    )
