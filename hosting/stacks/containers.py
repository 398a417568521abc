"""The typed container spec: every setting of every container `apply` creates, in one place.

The Pulumi program turns a `ContainerSpec` into a `pulumi_docker.Container`; the docker tests
turn the same spec into `docker run` arguments (`docker_run_args`), so what the real kernel
proves (read-only root, dropped capabilities, memory limit, process limit) is exactly what the
program asks for.

Limits and what they cover:
- memory: `memory` with `memory_swap` equal to it, so a container cannot swap past its plan;
  the kernel OOM-kills a container that allocates past it.
- CPU: `cpus` (CFS quota), the plan's cores.
- processes: a pids cgroup limit per container (`pids_limit`). pulumi_docker cannot say it,
  so apply sets it through the Engine API's update right after the engine's up
  (`hosting.provider.runtime.enforce_pids_limits`); `docker_run_args` sets it at create. The
  `nproc` ulimit stays as a second fence, but it is no limit on its own: the kernel exempts
  uid 0 of the host's user namespace from RLIMIT_NPROC whatever its capabilities, and it
  counts a UID's processes across every container running as that UID.
- disk IO: the plan's MB/s (`disk_io_mbps`), read and write, on the block device that backs
  Docker's data root (images, container layers and volumes alike). The docker plugin has
  `deviceReadBps`/`deviceWriteBps` but pulumi_docker 5.1's Python classes do not, so the
  program adds them with a resource transform (`hosting.stacks.docker_args.io_throttle`);
  the Engine API cannot update them on a running container.
- network: the plan's Mbps each way is no container setting at all: apply and the metering
  agent shape the host end of each of its veths with tc once it runs
  (`hosting.provider.netshape`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from hosting.databases import replication
from hosting.spec import names
from hosting.spec.models import Limits
from hosting.stacks import wal_archive

LOG_MAX_SIZE = "10m"
LOG_MAX_FILE = "3"
NPROC_LIMIT = 512
PIDS_LIMIT = 512  # per container: a fork bomb stops here, not at the host's pid_max
NOFILE_LIMIT = 8192  # within the hard limit of constrained hosts (a higher one fails to start)
POSTGRES_PORT = 5432
# The upstream postgres image's entrypoint chowns the data directory and drops to the postgres
# user with gosu: it needs exactly these. Images that start as postgres need none of them.
POSTGRES_CAPS = ("CHOWN", "DAC_OVERRIDE", "FOWNER", "SETGID", "SETUID")
EDGE_CAPS = ("NET_BIND_SERVICE",)
EDGE_ADMIN_DIR = "/run/caddy-admin"
EDGE_LOG_DIR = "/var/log/caddy"
EDGE_BOOTSTRAP = f"{EDGE_ADMIN_DIR}/bootstrap.json"
EDGE_CA_ROOT = "/etc/hosting-ca/root.pem"  # where platform.acme.ca_root is mounted


@dataclass(frozen=True)
class Mount:
    target: str
    source: str  # volume name or host path
    kind: str = "volume"  # volume | bind
    read_only: bool = False
    # A volume that binds this host directory (Docker's local driver, type=none,o=bind): the
    # database's filesystem of bounded size. None: a plain named volume.
    device: str | None = None


@dataclass(frozen=True)
class Port:
    internal: int
    external: int
    ip: str


@dataclass(frozen=True)
class Health:
    test: tuple[str, ...]
    interval_s: int = 30
    timeout_s: int = 5
    retries: int = 3
    start_period_s: int = 10


@dataclass(frozen=True)
class NetworkAttachment:
    network: str
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True)
class ContainerSpec:
    name: str
    image: str
    tenant: str
    deployment: str
    kind: str  # web | api | database | replica | edge
    memory_mb: int
    cpus: float
    env: Mapping[str, str] = field(default_factory=dict)
    secret_env: frozenset[str] = frozenset()  # names whose values are Pulumi secrets
    command: tuple[str, ...] | None = None
    entrypoint: str | None = None  # instead of the image's
    networks: tuple[NetworkAttachment, ...] = ()
    mounts: tuple[Mount, ...] = ()
    tmpfs: Mapping[str, str] = field(default_factory=dict)
    ports: tuple[Port, ...] = ()
    # Written on the host, into a directory the container bind-mounts, before it starts: the
    # engine's uploads copy through the container's root, which is read-only.
    host_files: Mapping[str, str] = field(default_factory=dict)
    # Host files holding secret material: their directory is the apply user's alone (0700);
    # each is bind-mounted as a file, which needs no access to its directory.
    secret_host_files: bool = False
    # Host directories the container's own (non-root, any uid) user writes into through a
    # bind mount: created before it starts (the WAL archive, stacks/wal_archive.py).
    writable_dirs: tuple[str, ...] = ()
    read_only: bool = True
    cap_add: tuple[str, ...] = ()
    cap_drop: tuple[str, ...] = ("ALL",)
    security_opts: tuple[str, ...] = ("no-new-privileges:true",)
    nproc: int = NPROC_LIMIT
    pids_limit: int = PIDS_LIMIT
    disk_io_mbps: int | None = None  # read and write, each; None: unthrottled (the edge)
    io_device: str | None = None  # the block device it applies to (ProgramSettings.io_device)
    nofile: int = NOFILE_LIMIT
    restart: str = "unless-stopped"
    health: Health | None = None
    log_opts: Mapping[str, str] = field(
        default_factory=lambda: {"max-size": LOG_MAX_SIZE, "max-file": LOG_MAX_FILE}
    )
    stop_timeout_s: int = 10

    @property
    def labels(self) -> dict[str, str]:
        return labels(self.tenant, self.deployment, self.kind)

    @property
    def memory_bytes(self) -> int:
        return self.memory_mb * 1024 * 1024

    def docker_run_args(
        self, *, env: Mapping[str, str] | None = None, io_device: str | None = None
    ) -> list[str]:
        """`docker create` arguments for the same container (the image and command last).

        Only the first network is attached here; `docker network connect` adds the others.
        `io_device` is the block device the disk IO limit applies to (see blockdev).
        """
        args = ["--name", self.name, "--restart", self.restart]
        for k, v in sorted(self.labels.items()):
            args += ["--label", f"{k}={v}"]
        for k, v in sorted({**self.env, **(env or {})}.items()):
            args += ["--env", f"{k}={v}"]
        if self.read_only:
            args.append("--read-only")
        for path, opts in sorted(self.tmpfs.items()):
            args += ["--tmpfs", f"{path}:{opts}" if opts else path]
        for cap in self.cap_drop:
            args += ["--cap-drop", cap]
        for cap in self.cap_add:
            args += ["--cap-add", cap]
        for opt in self.security_opts:
            args += ["--security-opt", opt]
        args += ["--memory", f"{self.memory_mb}m", "--memory-swap", f"{self.memory_mb}m"]
        args += ["--cpus", f"{self.cpus:g}"]
        args += ["--pids-limit", str(self.pids_limit)]
        device = io_device or self.io_device
        if self.disk_io_mbps is not None and device is not None:
            rate = f"{device}:{self.disk_io_mbps}mb"
            args += ["--device-read-bps", rate, "--device-write-bps", rate]
        args += ["--ulimit", f"nproc={self.nproc}:{self.nproc}"]
        args += ["--ulimit", f"nofile={self.nofile}:{self.nofile}"]
        args += ["--log-driver", "json-file"]
        for k, v in sorted(self.log_opts.items()):
            args += ["--log-opt", f"{k}={v}"]
        args += ["--stop-timeout", str(self.stop_timeout_s)]
        for m in self.mounts:
            opt = ",readonly" if m.read_only else ""
            args += ["--mount", f"type={m.kind},source={m.source},target={m.target}{opt}"]
        for p in self.ports:
            ip = f"[{p.ip}]" if ":" in p.ip else p.ip
            args += ["--publish", f"{ip}:{p.external}:{p.internal}"]
        if self.networks:
            args += ["--network", self.networks[0].network]
            for alias in self.networks[0].aliases:
                args += ["--network-alias", alias]
        if self.health is not None:
            h = self.health
            args += [
                "--health-cmd",
                " ".join(h.test[1:]) if h.test[0] == "CMD-SHELL" else _shell_join(h.test[1:]),
                "--health-interval",
                f"{h.interval_s}s",
                "--health-timeout",
                f"{h.timeout_s}s",
                "--health-retries",
                str(h.retries),
                "--health-start-period",
                f"{h.start_period_s}s",
            ]
        if self.entrypoint is not None:
            args += ["--entrypoint", self.entrypoint]
        args.append(self.image)
        if self.command:
            args += list(self.command)
        return args


def write_host_files(spec: ContainerSpec) -> None:
    """Put the container's host files in place (unchanged files are not rewritten)."""
    for path, content in spec.host_files.items():
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        if spec.secret_host_files:
            target.parent.chmod(0o700)
        if not target.is_file() or target.read_text() != content:
            target.write_text(content)
    for folder in spec.writable_dirs:
        wal_archive.prepare(Path(folder))


def _shell_join(parts: tuple[str, ...]) -> str:
    import shlex

    return " ".join(shlex.quote(p) for p in parts)


def labels(tenant: str, deployment: str, kind: str) -> dict[str, str]:
    """SPEC.md section 5: what the metering agent and operators find resources by."""
    return {"hosting.tenant": tenant, "hosting.deployment": deployment, "hosting.type": kind}


def app_health(
    port: int, path: str, interval_s: int, timeout_s: int, retries: int, probe: str | None = None
) -> Health:
    # wget (busybox, alpine) or curl (debian-based images): one of them is nearly always there.
    # A source build's image has neither, and brings its own `probe` (hosting/sources).
    url = f"http://127.0.0.1:{port}{path}"
    if probe is not None:
        return Health(("CMD", probe, url), interval_s, timeout_s, retries)
    cmd = f"wget -q -O /dev/null {url} || curl -fsS -o /dev/null {url} || exit 1"
    return Health(("CMD-SHELL", cmd), interval_s, timeout_s, retries)


def app_container(
    *,
    platform: str,
    tenant: str,
    deployment: str,
    kind: str,
    replica: int,
    image: str,
    port: int,
    limits: Limits,
    env: Mapping[str, str],
    secret_env: frozenset[str],
    health_path: str,
    health_interval_s: int = 30,
    health_timeout_s: int = 5,
    health_retries: int = 3,
    command: tuple[str, ...] | None = None,
    io_device: str | None = None,
    health_probe: str | None = None,
) -> ContainerSpec:
    """One replica of a web or API deployment: on its tenant's network only, nothing published."""
    name = names.container_name(platform, tenant, deployment, replica)
    return ContainerSpec(
        name=name,
        image=image,
        tenant=tenant,
        deployment=deployment,
        kind=kind,
        memory_mb=limits.memory_mb,
        cpus=limits.cpus,
        disk_io_mbps=limits.disk_io_mbps,
        io_device=io_device,
        env={**env, "PORT": str(port)},
        secret_env=secret_env,
        command=command,
        networks=(NetworkAttachment(names.network_name(platform, tenant), (name,)),),
        # Apps may write scratch files; nothing else of the image is writable.
        tmpfs={"/tmp": "rw,noexec,nosuid,size=64m", "/run": "rw,noexec,nosuid,size=16m"},
        health=app_health(
            port, health_path, health_interval_s, health_timeout_s, health_retries, health_probe
        ),
    )


def database_user(tenant: str, deployment: str) -> str:
    return ("u_" + f"{tenant}_{deployment}".replace("-", "_"))[:63]


def database_container(
    *,
    platform: str,
    tenant: str,
    deployment: str,
    image: str,
    limits: Limits,
    user: str,
    password: str,
    host_port: int,
    bind_ip: str,
    io_device: str | None = None,
    volume_device: str | None = None,
    wal_archive_dir: str | None = None,
    volume: str | None = None,
) -> ContainerSpec:
    """PostgreSQL on a named volume, on its tenant's network, published on bind_ip only.
    `volume`: its name, when not the first one (a major upgrade's, hosting.databases.upgrade).
    `volume_device`: the directory the volume binds (its tenant's bounded filesystem).
    `wal_archive_dir`: the host folder its WAL is archived to (point-in-time recovery)."""
    archive = (
        (Mount(wal_archive.ARCHIVE_MOUNT, wal_archive_dir, "bind"),) if wal_archive_dir else ()
    )
    name = names.container_name(platform, tenant, deployment, 0)
    return ContainerSpec(
        name=name,
        image=image,
        tenant=tenant,
        deployment=deployment,
        kind="database",
        memory_mb=limits.memory_mb,
        cpus=limits.cpus,
        disk_io_mbps=limits.disk_io_mbps,
        io_device=io_device,
        env={
            "POSTGRES_USER": user,
            "POSTGRES_PASSWORD": password,
            "POSTGRES_DB": names.database_name(deployment),
            "PGDATA": "/var/lib/postgresql/data/pgdata",
        },
        secret_env=frozenset({"POSTGRES_PASSWORD"}),
        networks=(NetworkAttachment(names.network_name(platform, tenant), (name,)),),
        mounts=(
            Mount(
                "/var/lib/postgresql/data",
                volume or names.volume_name(platform, tenant, deployment),
                device=volume_device,
            ),
            *archive,
        ),
        command=wal_archive.server_args() if wal_archive_dir else None,
        writable_dirs=(wal_archive_dir,) if wal_archive_dir else (),
        tmpfs={
            "/tmp": "rw,noexec,nosuid,size=64m",
            "/var/run/postgresql": "rw,noexec,nosuid,size=16m",
        },
        ports=(Port(POSTGRES_PORT, host_port, bind_ip),),
        cap_add=POSTGRES_CAPS,
        health=Health(("CMD-SHELL", f"pg_isready -q -h 127.0.0.1 -U {user}"), 10, 5, 5, 30),
        stop_timeout_s=30,  # a clean shutdown checkpoints instead of recovering on start
    )


def replica_container(
    primary: ContainerSpec,
    *,
    platform: str,
    index: int,
    replication_password: str,
    volume_device: str | None = None,
) -> ContainerSpec:
    """Read replica `index` (1…N) of the database `primary`: a streaming hot standby on its
    own volume, cloned from the primary on first start (hosting.databases.replication). The
    primary's image, limits and hardening; no published port, no first password, no WAL
    archive; on the tenant's network under its own name and the deployment's read alias,
    which Docker's DNS answers with every replica in turn."""
    tenant, deployment = primary.tenant, primary.deployment
    name = names.container_name(platform, tenant, deployment, index)
    [data] = [m for m in primary.mounts if m.target == "/var/lib/postgresql/data"]
    return replace(
        primary,
        name=name,
        kind="replica",
        env={
            "POSTGRES_USER": primary.env["POSTGRES_USER"],  # the health check's, the socket's
            "PGDATA": primary.env["PGDATA"],
            "PGPASSWORD": replication_password,  # libpq's, for the walreceiver: in no file
            "HOSTING_PRIMARY": primary.name,
            "HOSTING_SLOT": replication.slot_name(index),
            "HOSTING_REPLICATION_USER": replication.REPLICATION_ROLE,
            "HOSTING_STANDBY": replication.STANDBY_SCRIPT,
        },
        secret_env=frozenset({"PGPASSWORD"}),
        entrypoint="sh",
        command=replication.STANDBY_COMMAND,
        networks=(
            NetworkAttachment(
                names.network_name(platform, tenant),
                (name, replication.read_alias(platform, tenant, deployment)),
            ),
        ),
        mounts=(
            replace(
                data,
                source=names.volume_name(platform, tenant, deployment, f"replica{index}"),
                device=volume_device,
            ),
        ),
        ports=(),
        host_files={},
        writable_dirs=(),
    )


def edge_container(
    *,
    platform: str,
    image: str,
    tenant_networks: tuple[str, ...],
    admin_dir: str,
    log_dir: str,
    static_binds: Mapping[str, str],
    http_port: int = 80,
    https_port: int = 443,
    publish_ip: str = "0.0.0.0",
    ca_root: str | None = None,
) -> ContainerSpec:
    """The one Caddy for the host: the only container published on 80/443.

    `admin_dir` (a host directory) holds the admin API's unix socket; `static_binds` maps a
    host folder to its path under the edge's static root, mounted read-only.
    """
    name = names.edge_name(platform)
    bootstrap = (
        '{"admin":{"listen":"unix/' + EDGE_ADMIN_DIR + '/admin.sock"}}'
    )  # until the first /load; --resume then restarts from the last loaded config
    return ContainerSpec(
        name=name,
        image=image,
        tenant="",
        deployment="edge",
        kind="edge",
        memory_mb=512,
        cpus=1.0,
        env={"XDG_DATA_HOME": "/data", "XDG_CONFIG_HOME": "/config"},
        command=("caddy", "run", "--resume", "--config", EDGE_BOOTSTRAP),
        networks=tuple(NetworkAttachment(n) for n in tenant_networks),
        mounts=(
            Mount("/data", names.volume_name(platform, "edge", "caddy", "data")),
            Mount("/config", names.volume_name(platform, "edge", "caddy", "config")),
            Mount(EDGE_ADMIN_DIR, admin_dir, "bind"),
            Mount(EDGE_LOG_DIR, log_dir, "bind"),
            *(Mount(target, src, "bind", True) for target, src in sorted(static_binds.items())),
            *((Mount(EDGE_CA_ROOT, ca_root, "bind", True),) if ca_root else ()),
        ),
        tmpfs={"/tmp": "rw,noexec,nosuid,size=64m"},
        ports=(Port(80, http_port, publish_ip), Port(443, https_port, publish_ip)),
        host_files={f"{admin_dir}/bootstrap.json": bootstrap},
        cap_add=EDGE_CAPS,
        health=None,  # the Caddy images carry no HTTP client; the admin socket is checked instead
        stop_timeout_s=15,
    )
