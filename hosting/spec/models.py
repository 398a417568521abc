"""hosting.yaml version 1 as frozen pydantic models (SPEC.md section 1).

Field-level rules live here; rules that span the document (references, plan limits,
unique domains, paths) live in `rules.py`, so every problem is reported at once.
"""

from __future__ import annotations

import ipaddress
import re
from datetime import date
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    field_validator,
    model_validator,
)

LABEL_RE = re.compile(r"^[a-z]([a-z0-9-]{0,38}[a-z0-9])?$")
PLATFORM_NAME_RE = re.compile(r"^[a-z][a-z0-9-]{0,39}$")
HOSTNAME_RE = re.compile(
    r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)+$"
)
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
REF_RE = re.compile(r"\$\{([a-z][a-z0-9-]*)\.([a-z_]+)\}")

Label = Annotated[
    str,
    Field(
        pattern=LABEL_RE.pattern,
        description="a DNS label: lowercase letters, digits and '-', starting with a letter",
    ),
]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=False)


def _check_hostname(value: str) -> str:
    if value != value.lower():
        raise ValueError(f"`{value}` must be lowercase")
    if not HOSTNAME_RE.match(value):
        raise ValueError(f"`{value}` is not a valid hostname (e.g. shop.example.com)")
    return value


class Limits(_Model):
    """Per-container resource limits."""

    cpus: float = Field(gt=0, le=256)
    memory_mb: int = Field(gt=0)
    disk_io_mbps: int = Field(gt=0)
    network_mbps: int = Field(gt=0)


class Plan(_Model):
    name: str
    price_monthly: Decimal = Field(ge=0, decimal_places=2)
    price_yearly: Decimal = Field(ge=0, decimal_places=2)
    storage_gb: int = Field(ge=0)
    bandwidth_gb: int = Field(ge=0)
    databases: int = Field(ge=0)
    apis: int = Field(ge=0)
    websites: int = Field(ge=0)
    custom_domain: bool
    ssl_certificate: bool
    limits: Limits | None = Field(
        description="container limits; null means custom: each tenant on the plan gives its own"
    )
    features: list[str] = Field(default_factory=list)
    backup_retention_days: int = Field(
        default=7,
        ge=1,
        le=3650,
        description="point-in-time recovery window: base backups and WAL kept this many days",
    )
    database_replicas: int = Field(
        default=0, ge=0, le=5, description="read replicas a database may have (Pro and above)"
    )

    @property
    def custom_limits(self) -> bool:
        return self.limits is None


class Acme(_Model):
    email: str | None = None
    ca: str = "letsencrypt"
    ca_root: str | None = None

    @field_validator("email")
    @classmethod
    def _email(cls, v: str | None) -> str | None:
        if v is not None and not EMAIL_RE.match(v):
            raise ValueError(f"`{v}` is not an email address")
        return v

    @field_validator("ca")
    @classmethod
    def _ca(cls, v: str) -> str:
        if v in ("letsencrypt", "letsencrypt-staging", "internal") or v.startswith("https://"):
            return v
        raise ValueError(
            f"`{v}` is not a CA: use letsencrypt, letsencrypt-staging, internal "
            "or an ACME directory URL starting with https://"
        )

    @property
    def directory_url(self) -> str | None:
        return {
            "letsencrypt": "https://acme-v02.api.letsencrypt.org/directory",
            "letsencrypt-staging": "https://acme-staging-v02.api.letsencrypt.org/directory",
            "internal": None,
        }.get(self.ca, self.ca)


class Docker(_Model):
    host: str = "unix:///var/run/docker.sock"

    @field_validator("host")
    @classmethod
    def _host(cls, v: str) -> str:
        if not v.startswith(("unix://", "ssh://", "tcp://", "npipe://")):
            raise ValueError(
                f"`{v}` is not a Docker host: use unix:///path, ssh://user@host or tcp://host:port"
            )
        return v


VERSION_PLACEHOLDER = "{version}"


class Images(_Model):
    proxy: str = "caddy:2-alpine"
    # `{version}` is each database's `version:`, so a major upgrade has an image to go to; a
    # value without it is one image for every database (a version change is then refused).
    postgres: str = f"postgres:{VERSION_PLACEHOLDER}-alpine"
    # Debian's PgBouncer, built locally by .ci/images.sh: no upstream image has its layout
    # (/usr/sbin/pgbouncer, run as postgres, with pg_isready and psql beside it).
    pgbouncer: str = "hosting-test/pgbouncer:latest"

    @field_validator("postgres")
    @classmethod
    def _postgres(cls, v: str) -> str:
        if "{" in v.replace(VERSION_PLACEHOLDER, "") or "}" in v.replace(VERSION_PLACEHOLDER, ""):
            raise ValueError(
                f"`{v}` has a placeholder other than {VERSION_PLACEHOLDER}; "
                "write e.g. postgres:{version}-alpine, or one image without braces"
            )
        return v

    @property
    def postgres_per_version(self) -> bool:
        return VERSION_PLACEHOLDER in self.postgres

    def postgres_for(self, version: int) -> str:
        """The PostgreSQL image for a database of major `version`."""
        return self.postgres.replace(VERSION_PLACEHOLDER, str(version))


def _versions_in(value: Any) -> Any:
    # `20:` and `3.11:` are numbers to YAML; a version is a name, so keep what was written.
    if isinstance(value, dict):
        return {str(k): v for k, v in value.items()}
    return value


class Runtimes(_Model):
    """Base images of source builds, by language and version; the first one listed is the
    version a deployment gets when its `runtime` names none."""

    node: dict[str, str] = Field(
        default_factory=lambda: {"20": "node:20-bookworm-slim"}, min_length=1
    )
    python: dict[str, str] = Field(
        default_factory=lambda: {"3.11": "python:3.11-slim-bookworm"}, min_length=1
    )

    @field_validator("node", "python", mode="before")
    @classmethod
    def _keys(cls, v: Any) -> Any:
        return _versions_in(v)

    def image(self, language: str, version: str | None) -> str:
        table: dict[str, str] = getattr(self, language)
        return table[version] if version is not None else next(iter(table.values()))


class Dns(_Model):
    nameservers: list[str] = Field(default_factory=list)

    @field_validator("nameservers")
    @classmethod
    def _servers(cls, v: list[str]) -> list[str]:
        for server in v:
            host, _, port = server.rpartition(":") if server.count(":") == 1 else (server, "", "")
            host = host or server
            try:
                ipaddress.ip_address(host.strip("[]"))
            except ValueError:
                raise ValueError(f"`{server}` is not an IP address or IP:PORT") from None
            if port and not (port.isdigit() and 0 < int(port) < 65536):
                raise ValueError(f"`{server}` has an invalid port")
        return v


NODE_NAME_RE = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9_.-]{0,62})$")


def _node_host(value: str) -> str:
    # The agent reads each node's engine over HTTP itself (hosting.metering.engine): no ssh.
    if not value.startswith(("unix://", "tcp://")) or len(value) <= len("tcp://"):
        raise ValueError(
            f"`{value}` is not an engine address the agent can read: use unix:///path or "
            "tcp://host:port (the node's own engine, as this machine reaches it)"
        )
    return value


def _node_name(value: str) -> str:
    if not NODE_NAME_RE.match(value):
        raise ValueError(
            f"`{value}` is not a node name: letters, digits, '.', '_' and '-', as "
            "`docker node ls` shows it"
        )
    return value


NodeName = Annotated[str, AfterValidator(_node_name)]
NodeHost = Annotated[str, AfterValidator(_node_host)]


class Swarm(_Model):
    """How the swarm target uses its nodes (platform.target swarm)."""

    encrypted_networks: bool = Field(
        default=True,
        description="IPsec between nodes on tenant overlays; needs the nodes' kernel ESP (xfrm)",
    )
    endpoint_mode: Literal["vip", "dnsrr"] = Field(
        default="vip",
        description="vip: one virtual IP per service (needs IPVS in the nodes' kernel); "
        "dnsrr: the service name resolves to each task, and the edge balances over them",
    )
    nodes: dict[NodeName, NodeHost] = Field(
        default_factory=dict,
        description="node name → its own engine's address (unix:// or tcp://, as the metering "
        "agent's machine reaches it). The agent, on the manager, meters the tasks of every "
        "node listed here into the one store; without it, only the manager's tasks",
    )


class Platform(_Model):
    name: str = Field(pattern=PLATFORM_NAME_RE.pattern)
    domain: str
    public_ipv4: ipaddress.IPv4Address
    public_ipv6: ipaddress.IPv6Address | None = None
    acme: Acme | None = None
    docker: Docker = Field(default_factory=Docker)
    database_bind: ipaddress.IPv4Address | ipaddress.IPv6Address = ipaddress.IPv4Address(
        "127.0.0.1"
    )
    images: Images = Field(default_factory=Images)
    runtimes: Runtimes = Field(default_factory=Runtimes)
    dns: Dns = Field(default_factory=Dns)
    billing: Billing | None = None
    smtp: Smtp | None = None
    payments: Payments | None = None
    backups: Backups | None = None
    target: Literal["docker", "swarm"] = Field(
        default="docker",
        description="docker: containers on one engine; swarm: services on a Docker Swarm "
        "(platform.docker.host names a manager)",
    )
    swarm: Swarm = Field(default_factory=Swarm)

    @field_validator("domain")
    @classmethod
    def _domain(cls, v: str) -> str:
        return check_domain(v)


def check_domain(value: str) -> str:
    if value != value.lower():
        raise ValueError(f"`{value}` must be lowercase")
    if not HOSTNAME_RE.match(value) and not re.match(r"^[a-z0-9-]+$", value):
        raise ValueError(f"`{value}` is not a valid domain (e.g. apps.example.com)")
    return value


class SecretRef(_Model):
    """Where a secret's value comes from at apply time: never the file itself."""

    env: str | None = Field(default=None, pattern=ENV_NAME_RE.pattern)
    file: str | None = None

    @model_validator(mode="after")
    def _one_source(self) -> SecretRef:
        if (self.env is None) == (self.file is None):
            raise ValueError("give exactly one of `env: NAME` or `file: path`")
        return self


class Billing(_Model):
    """The seller on every invoice (issue 15), and its terms."""

    legal_name: str = Field(min_length=1, max_length=200)
    address: str = Field(min_length=1, description="postal address; several lines with `|`")
    tax_id: str | None = Field(default=None, min_length=1, max_length=64)
    payment_terms_days: int = Field(
        default=14, ge=0, le=365, description="due date = issue date + this many days"
    )
    footer: str | None = Field(default=None, max_length=1000)
    suspend_after_days: int | None = Field(
        default=None,
        ge=1,
        le=365,
        description="suspend a tenant this many days after an unpaid invoice's due date "
        "(null: never)",
    )


def _check_sender(value: str) -> str:
    from email.utils import parseaddr

    _, address = parseaddr(value)
    if not address or not EMAIL_RE.match(address):
        raise ValueError(f"`{value}` is not an email address (e.g. Billing <billing@example.com>)")
    return value


class Smtp(_Model):
    """The mail server invoices are sent through; credentials only from env or a file."""

    host: str = Field(min_length=1)
    port: int = Field(default=587, ge=1, le=65535)
    from_: str = Field(alias="from", description="the sender, e.g. Billing <billing@example.com>")
    starttls: bool = True
    username: SecretRef | None = None
    password: SecretRef | None = None

    @field_validator("from_")
    @classmethod
    def _from(cls, v: str) -> str:
        return _check_sender(v)

    @model_validator(mode="after")
    def _both_or_neither(self) -> Smtp:
        if (self.username is None) != (self.password is None):
            raise ValueError("give both `username` and `password`, or neither")
        return self


class Build(_Model):
    context: str
    dockerfile: str = "Dockerfile"
    args: dict[str, str] = Field(default_factory=dict)


class Payments(_Model):
    """The payment provider invoices are collected through (issue 15): Stripe, with its API
    key and webhook signing secret only from env or a file."""

    provider: Literal["stripe"]
    api_key: SecretRef
    webhook_secret: SecretRef
    api_base: str = Field(
        default="https://api.stripe.com",
        description="Stripe's API address; http:// only on loopback (e.g. stripe-mock)",
    )

    @field_validator("api_base")
    @classmethod
    def _api_base(cls, v: str) -> str:
        from urllib.parse import urlparse

        url = urlparse(v)
        loopback = url.hostname in ("127.0.0.1", "::1", "localhost")
        if url.scheme == "https" and url.hostname:
            return v.rstrip("/")
        if url.scheme == "http" and loopback:
            return v.rstrip("/")
        raise ValueError(
            f"`{v}` is not a Stripe API address: use https://HOST, or http:// on loopback "
            "only (the API key must not cross a network in clear)"
        )


class BackupS3(_Model):
    """An S3-compatible bucket each new backup is copied to, off the host, as encrypted as it
    is on disk (hosting.backups.offsite)."""

    endpoint: str = Field(description="https://HOST[:PORT], or http:// on loopback only")
    bucket: str = Field(pattern=r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
    region: str = Field(default="us-east-1", min_length=1)
    prefix: str = Field(default="", description="key prefix, e.g. backups/")
    access_key_id: str = Field(min_length=1)
    secret_access_key: SecretRef

    @field_validator("endpoint")
    @classmethod
    def _endpoint(cls, v: str) -> str:
        from urllib.parse import urlparse

        url = urlparse(v)
        loopback = url.hostname in ("127.0.0.1", "::1", "localhost")
        if url.hostname and (url.scheme == "https" or (url.scheme == "http" and loopback)):
            return v.rstrip("/")
        raise ValueError(
            f"`{v}` is not an S3 endpoint: use https://HOST, or http:// on loopback only "
            "(the signed requests and the backups must not cross a network in clear)"
        )


class Backups(_Model):
    """Where backups go besides STATE_DIR/backups."""

    s3: BackupS3 | None = None


class Runtime(_Model):
    """Which language (and version, from `platform.runtimes`) builds a `source:` deployment."""

    node: str | None = None
    python: str | None = None

    @field_validator("node", "python", mode="before")
    @classmethod
    def _version(cls, v: Any) -> Any:
        return str(v) if isinstance(v, int | float) and not isinstance(v, bool) else v

    @model_validator(mode="after")
    def _one_language(self) -> Runtime:
        if (self.node is None) == (self.python is None):
            raise ValueError('give exactly one of `node: "VERSION"` or `python: "VERSION"`')
        return self

    @property
    def language(self) -> str:
        return "node" if self.node is not None else "python"

    @property
    def version(self) -> str:
        return self.node if self.node is not None else str(self.python)


class Health(_Model):
    path: str = "/"
    interval_s: int = Field(default=30, ge=1, le=3600)
    timeout_s: int = Field(default=5, ge=1, le=600)
    retries: int = Field(default=3, ge=1, le=100)

    @field_validator("path")
    @classmethod
    def _path(cls, v: str) -> str:
        if not v.startswith("/"):
            raise ValueError(f"`{v}` must start with `/`")
        return v


EnvValue = Annotated[str, Field(description="a string; numbers and booleans are converted")]

SECRET_LIKE_ENV = re.compile(
    r"(^|_)(PASSWORD|PASSWD|PASS|SECRET|SECRET_KEY|TOKEN|API_KEY|PRIVATE_KEY|ACCESS_KEY)$"
)


def _stringify_env(value: Any) -> Any:
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if isinstance(v, bool):
                v = "true" if v else "false"
            elif isinstance(v, int | float | Decimal):
                v = str(v)
            out[k] = v
        return out
    return value


class Autoscale(_Model):
    """`replicas: {min, max, cpu_target}` (platform.target swarm): the metering agent scales
    the service between min and max on its replicas' CPU, each at the plan's limits."""

    min: int = Field(default=1, ge=1, le=100)
    max: int = Field(ge=1, le=100)
    cpu_target: int = Field(
        default=70,
        ge=10,
        le=95,
        description="percent of the plan's CPU per replica, averaged over the last minutes",
    )
    cooldown_s: int = Field(
        default=300, ge=30, le=3600, description="seconds between two scale events"
    )

    @model_validator(mode="after")
    def _bounds(self) -> Autoscale:
        if self.min > self.max:
            raise ValueError(f"`min` ({self.min}) is more than `max` ({self.max})")
        return self


# A count, or the autoscaler's bounds: chosen by shape, so an error names one branch only.
Replicas = Annotated[
    Annotated[int, Field(ge=1, le=100), Tag("count")] | Annotated[Autoscale, Tag("autoscale")],
    Discriminator(lambda v: "autoscale" if isinstance(v, dict | Autoscale) else "count"),
]


class _App(_Model):
    image: str | None = None
    build: Build | None = None
    source: str | None = Field(
        default=None, description="a folder built without a Dockerfile (Node or Python)"
    )
    runtime: Runtime | None = None
    port: int | None = Field(default=None, ge=1, le=65535)
    replicas: Replicas = 1
    command: list[str] | None = None
    env: dict[str, EnvValue] = Field(default_factory=dict)
    secrets: dict[str, SecretRef] = Field(default_factory=dict)
    domains: list[str] = Field(default_factory=list)
    health: Health = Field(default_factory=Health)
    stopped: bool = False

    @field_validator("env", mode="before")
    @classmethod
    def _env_in(cls, v: Any) -> Any:
        return _stringify_env(v)

    @field_validator("env", "secrets")
    @classmethod
    def _env_names(cls, v: dict[str, Any]) -> dict[str, Any]:
        for name in v:
            if not ENV_NAME_RE.match(name):
                raise ValueError(f"`{name}` is not a valid environment variable name")
        return v

    @field_validator("domains")
    @classmethod
    def _domains(cls, v: list[str]) -> list[str]:
        for d in v:
            _check_hostname(d)
        return v

    @property
    def replica_count(self) -> int:
        """How many replicas apply starts: the count, or the autoscaler's minimum."""
        return self.replicas.min if isinstance(self.replicas, Autoscale) else self.replicas

    @property
    def autoscale(self) -> Autoscale | None:
        return self.replicas if isinstance(self.replicas, Autoscale) else None

    @property
    def listen_port(self) -> int | None:
        """The port the app listens on: `port`, or SOURCE_PORT for a source build that gives
        none (None: a static site, which has no container)."""
        return self.port or (SOURCE_PORT if self.source is not None else None)

    @property
    def origin(self) -> str:
        """Where the app comes from: image, build, source or static."""
        return "image" if self.image else "build" if self.build else "source" if self.source else ""


# A source build's app listens here unless `port` says otherwise (it gets PORT in its env).
SOURCE_PORT = 8080


class _HasStatic(_App):
    static: str | None = None

    @model_validator(mode="after")
    def _one_source(self) -> _HasStatic:
        given = [n for n in ("image", "build", "source", "static") if getattr(self, n) is not None]
        if len(given) != 1:
            raise ValueError(
                "give exactly one of `image`, `build`, `source` or `static`"
                + (f" (found {', '.join(given)})" if given else "")
            )
        if self.runtime is not None and self.source is None:
            raise ValueError("`runtime` is for `source`: the others bring their own runtime")
        if self.static is not None:
            if self.port is not None:
                raise ValueError("`port` is for image or build; a static site has no container")
            if self.replicas != 1:
                raise ValueError("`replicas` is for image or build; the edge serves static files")
        elif self.port is None and self.source is None:
            raise ValueError("`port` is required: the port the app listens on")
        return self

    @property
    def origin(self) -> str:
        return "static" if self.static is not None else super().origin


class WebDeployment(_HasStatic):
    type: Literal["web"]


class ApiDeployment(_HasStatic):
    type: Literal["api"]


class Pooling(_Model):
    """PgBouncer in front of a database (issue 12). The defaults suit a small web app: in
    transaction mode 500 clients share 20 server connections, well within PostgreSQL's
    default `max_connections` of 100 (which also keeps room for migrations on `direct_url`)."""

    mode: Literal["transaction", "session", "statement"] = "transaction"
    max_client_conn: int = Field(default=500, ge=1, le=8000)
    default_pool_size: int = Field(default=20, ge=1, le=1000)


def _or_true(schema: dict[str, Any]) -> None:
    # The schema says what the before-validator accepts: `true` as well as the mapping.
    schema["anyOf"].insert(0, {"type": "boolean"})


class DatabaseDeployment(_Model):
    type: Literal["database"]
    version: int = Field(default=15, ge=12, le=17)
    stopped: bool = False
    pooling: Pooling | None = Field(
        default=None,
        json_schema_extra=_or_true,
        description="true or {mode, max_client_conn, default_pool_size}: PgBouncer in front "
        "of the database; ${db.url} then points at it, ${db.direct_url} at the server",
    )

    @field_validator("pooling", mode="before")
    @classmethod
    def _pooling(cls, v: Any) -> Any:
        # `true` takes every default; `false` (or nothing) is no pooler.
        if isinstance(v, bool):
            return {} if v else None
        if not isinstance(v, dict) and v is not None:
            raise ValueError(
                f"`{v}` is not a pooling setting: give `true` or "
                "{mode, max_client_conn, default_pool_size}"
            )
        return v

    replicas: int = Field(
        default=0,
        ge=0,
        le=5,
        description="streaming hot standbys for reads (${db.read_url}); Pro and above",
    )


Deployment = Annotated[
    WebDeployment | ApiDeployment | DatabaseDeployment, Field(discriminator="type")
]


class Tenant(_Model):
    name: str = Field(min_length=1, max_length=200)
    email: str
    plan: str
    billing_cycle: Literal["monthly", "yearly"] = "monthly"
    started: date
    limits: Limits | None = None
    billing_address: str | None = Field(
        default=None, min_length=1, description="shown on invoices; several lines with `|`"
    )
    tax_id: str | None = Field(default=None, min_length=1, max_length=64)
    tax_rate: Decimal | None = Field(
        default=None,
        ge=0,
        le=100,
        decimal_places=4,
        description="percent, charged on the invoice's net as its own line (none: no tax)",
    )
    deployments: dict[Label, Deployment] = Field(default_factory=dict)

    @field_validator("email")
    @classmethod
    def _email(cls, v: str) -> str:
        if not EMAIL_RE.match(v):
            raise ValueError(f"`{v}` is not an email address")
        return v

    @field_validator("plan")
    @classmethod
    def _plan(cls, v: str) -> str:
        return v.lower()


class Spec(_Model):
    version: Literal[1]
    platform: Platform
    plans: dict[str, Plan] = Field(default_factory=dict)
    tenants: dict[Label, Tenant] = Field(default_factory=dict)

    def plan_of(self, tenant: Tenant) -> Plan:
        return self.plans[tenant.plan]

    def limits_of(self, tenant: Tenant) -> Limits:
        plan = self.plan_of(tenant)
        limits = plan.limits or tenant.limits
        assert limits is not None, "rules guarantee limits for custom plans"
        return limits

    def deployment(self, ref: str) -> tuple[str, str, Tenant, Any]:
        """Look up `TENANT/DEPLOYMENT`; raises KeyError when either is unknown."""
        tenant_id, _, dep_id = ref.partition("/")
        tenant = self.tenants[tenant_id]
        return tenant_id, dep_id, tenant, tenant.deployments[dep_id]
