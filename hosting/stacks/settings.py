"""What the program needs beyond the spec: generated credentials, allocated ports, secret
values and paths. The provider persists credentials and ports in the stack's config (as a
Pulumi secret), so they stay the same across runs and never sit in a plaintext file.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from hosting.databases.roles import login_name
from hosting.errors import SecretError
from hosting.spec.models import DatabaseDeployment, Spec
from hosting.stacks.containers import database_user

FIRST_DATABASE_PORT = 15432
LAST_DATABASE_PORT = 32767  # below Linux's ephemeral range, so the kernel never hands it out


@dataclass(frozen=True)
class DatabaseAccess:
    user: str  # the database's owner (POSTGRES_USER)
    password: str  # the owner's first password: the container's POSTGRES_PASSWORD
    port: int  # the host port on platform.database_bind
    # `hosting secrets rotate` (hosting.databases.roles): apps log in as generation
    # `generation` with `login_password`; generation 0 is the owner with `password`.
    generation: int = 0
    login_password: str | None = None
    retiring: tuple[int, ...] = ()  # generations to retire after the next complete apply
    # The `replicator` role's, once the database has had read replicas (see
    # hosting.databases.replication); kept when they go, so they can come back.
    replication_password: str | None = None
    # The PostgreSQL major version of the data on disk, known apart from the spec so that a
    # changed `version:` is seen as a data migration (hosting.databases.upgrade). None: a
    # config from before it was recorded, taken as the spec's version.
    version: int | None = None
    # Upgraded at least once: the data is on its own volume, `<volume>_pg<version>`.
    upgraded: bool = False

    @property
    def login(self) -> str:
        return login_name(self.user, self.generation)

    @property
    def current_password(self) -> str:
        return self.password if self.login_password is None else self.login_password

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {"user": self.user, "password": self.password, "port": self.port}
        if self.generation or self.retiring:  # unrotated databases keep their config as it was
            out |= {
                "generation": self.generation,
                "login_password": self.login_password,
                "retiring": list(self.retiring),
            }
        if self.replication_password is not None:
            out["replication_password"] = self.replication_password
        if self.version is not None:
            out["version"] = self.version
        if self.upgraded:
            out["upgraded"] = True
        return out

    @classmethod
    def from_json(cls, raw: Mapping[str, object]) -> DatabaseAccess:
        retiring = raw.get("retiring") or []
        assert isinstance(retiring, list)
        login_password = raw.get("login_password")
        replication = raw.get("replication_password")
        version = raw.get("version")
        return cls(
            user=str(raw["user"]),
            password=str(raw["password"]),
            port=int(str(raw["port"])),
            generation=int(str(raw.get("generation", 0))),
            login_password=None if login_password is None else str(login_password),
            retiring=tuple(int(g) for g in retiring),
            replication_password=None if replication is None else str(replication),
            version=None if version is None else int(str(version)),
            upgraded=raw.get("upgraded") is True,
        )


@dataclass(frozen=True)
class ProgramSettings:
    databases: Mapping[str, DatabaseAccess]  # "tenant/deployment"
    secret_values: Mapping[str, str] = field(default_factory=dict)  # "tenant/deployment/NAME"
    state_dir: Path = Path(".hosting")
    base_dir: Path = Path(".")
    verified_domains: frozenset[str] = frozenset()
    edge_http_port: int = 80
    edge_https_port: int = 443
    edge_publish_ip: str = "0.0.0.0"
    # The Docker engine refuses a CPU limit above its own cores: a plan's 4 cores on a 2-core
    # host are held to 2 (all of them), which is what the plan grants there anyway.
    host_cpus: float | None = None
    # The block device behind Docker's data root: disk IO limits name it (None: not set).
    io_device: str | None = None
    # Tenants suspended for an unpaid invoice (hosting.payments.suspension): their web and API
    # containers are not run and the edge answers their hosts with 402; databases are kept.
    suspended: frozenset[str] = frozenset()
    # Where each tenant's databases' filesystem is mounted (hosting.provider.volume_quota):
    # database volumes bind a directory in it. None: plain named volumes, unbounded.
    volume_root: Path | None = None
    # Databases whose volume already exists as a plain named volume (made before volumes were
    # bounded): kept as they are, since Docker keeps a volume by its name and the state would
    # otherwise differ from the engine on every plan. "tenant/deployment".
    unbounded_volumes: frozenset[str] = frozenset()
    # On a swarm, the node id of platform.docker.host's engine, where `hosting` runs: the
    # edge is pinned there, since it binds that machine's folders and admin socket. None:
    # any manager (the program run outside the driver, under mocks).
    edge_node_id: str | None = None


def database_keys(spec: Spec) -> list[str]:
    return [
        f"{tid}/{did}"
        for tid, tenant in spec.tenants.items()
        for did, dep in tenant.deployments.items()
        if isinstance(dep, DatabaseDeployment)
    ]


def allocate_ports(existing: Mapping[str, int], wanted: list[str]) -> dict[str, int]:
    """Keep every port already given (also for deployments that left the file, so a port is
    never handed to someone else while their volume may still exist); new deployments get the
    lowest free port, in file order."""
    out = dict(existing)
    used = set(out.values())
    candidate = FIRST_DATABASE_PORT
    for key in wanted:
        if key in out:
            continue
        while candidate in used:
            candidate += 1
        if candidate > LAST_DATABASE_PORT:
            raise SecretError("no free database port left", "remove retired databases")
        out[key] = candidate
        used.add(candidate)
    return out


def new_password() -> str:
    # 32 bytes of entropy, URL-safe so it can sit in a connection URL unescaped.
    return secrets.token_urlsafe(32)


def derived_password(passphrase: str, platform: str, key: str) -> str:
    """A new database's first password, derived from the stack's passphrase: a plan computes
    the same one its apply will, so a plan needs no write to the state to stay appliable (a
    read-only state credential suffices). Only as guessable as the passphrase, which already
    decrypts every stored password."""
    message = f"hosting database password v1\0{platform}\0{key}".encode()
    digest = hmac.new(passphrase.encode(), message, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def ensure_databases(
    spec: Spec,
    existing: Mapping[str, DatabaseAccess],
    password_for: Callable[[str], str] | None = None,
    data_version: Callable[[str], int | None] | None = None,
) -> dict[str, DatabaseAccess]:
    """Existing credentials and ports unchanged; new databases get theirs from
    `password_for(key)`, or random ones. `data_version(key)`: the major version of the data
    a database runs on now, asked for those recorded before versions were."""
    ports = allocate_ports({k: v.port for k, v in existing.items()}, database_keys(spec))
    out = dict(existing)
    for key in database_keys(spec):
        tid, did = key.split("/")
        dep = spec.tenants[tid].deployments[did]
        assert isinstance(dep, DatabaseDeployment)
        if key not in out:
            password = password_for(key) if password_for else new_password()
            out[key] = DatabaseAccess(
                database_user(tid, did), password, ports[key], version=dep.version
            )
        elif out[key].version is None:
            # Recorded before versions were: its data is the version it runs on, which the
            # file may already have raised (then the raise is an upgrade like any other).
            running = data_version(key) if data_version else None
            out[key] = replace(out[key], version=running or dep.version)
        if dep.replicas and out[key].replication_password is None:
            secret = password_for(f"{key}/replication") if password_for else new_password()
            out[key] = replace(out[key], replication_password=secret)
    return out


def resolve_secrets(
    spec: Spec, base_dir: Path, env: Mapping[str, str] | None = None
) -> dict[str, str]:
    """Read every `secrets:` value now (apply time). Errors name the variable, never a value."""
    environ = os.environ if env is None else env
    out: dict[str, str] = {}
    missing: list[str] = []
    for tid, tenant in spec.tenants.items():
        for did, dep in tenant.deployments.items():
            if isinstance(dep, DatabaseDeployment):
                continue
            for name, ref in dep.secrets.items():
                key = f"{tid}/{did}/{name}"
                if ref.env is not None:
                    if ref.env not in environ:
                        missing.append(f"${ref.env} (for {tid}/{did} {name})")
                        continue
                    out[key] = environ[ref.env]
                else:
                    assert ref.file is not None
                    path = (base_dir / ref.file).resolve()
                    try:
                        out[key] = path.read_text().rstrip("\n")
                    except OSError as exc:
                        raise SecretError(
                            f"cannot read the secret file {path} for {tid}/{did} {name}: "
                            f"{exc.strerror}"
                        ) from None
    if missing:
        raise SecretError(
            "secret environment variables are not set: " + ", ".join(missing),
            "export them before `hosting plan`/`apply`",
        )
    return out


def default_settings(spec: Spec, base_dir: Path | None = None) -> ProgramSettings:
    """Settings for running the program outside the driver (e.g. under mocks): fresh
    credentials, ports from the first free one, and placeholder secret values."""
    placeholders = {
        f"{tid}/{did}/{name}": f"<secret {name}>"
        for tid, tenant in spec.tenants.items()
        for did, dep in tenant.deployments.items()
        if not isinstance(dep, DatabaseDeployment)
        for name in dep.secrets
    }
    return ProgramSettings(
        databases=ensure_databases(spec, {}),
        secret_values=placeholders,
        base_dir=base_dir or Path.cwd(),
    )
