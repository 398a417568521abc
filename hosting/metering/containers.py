"""Per-container counter readings and the usage between two readings.

Counters are cumulative per container life. A reading is compared with the previous one of
the same life (same container id and start time); a new life (first sight, restart,
redeploy) is measured from zero at its start, and a counter that went backwards is treated
the same way, so usage is never negative and never counted twice.
"""

from __future__ import annotations

from collections.abc import Set
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from hosting.metering.cgroups import CgroupMissing, Counters, pid_belongs_to, read_counters
from hosting.metering.engine import Container, Engine

MIN_CPU_WINDOW_S = 1.0
REMOTE_READS_AT_ONCE = 8  # stats calls in flight to one other node's engine


@dataclass(frozen=True)
class Reading:
    container_id: str
    tenant: str
    deployment: str
    kind: str
    started_at: str  # the engine's State.StartedAt: names one container life
    read_at: datetime  # naive UTC, microseconds
    counters: Counters
    node: str = ""  # the swarm node whose engine listed it ("" on one engine)


@dataclass(frozen=True)
class Previous:
    started_at: str
    read_at: datetime
    cpu_ns: int
    rx_bytes: int
    tx_bytes: int


@dataclass(frozen=True)
class Usage:
    cpu_percent: float | None  # of one core over the interval; None when too short to tell
    memory_bytes: int
    rx_bytes: int
    tx_bytes: int


def parse_started(started_at: str) -> datetime | None:
    """Docker's RFC 3339 with nanoseconds → naive UTC (microseconds)."""
    text = started_at.rstrip("Z")
    if not text or text.startswith("0001-"):
        return None
    head, _, frac = text.partition(".")
    try:
        base = datetime.fromisoformat(head)
    except ValueError:
        return None
    if base.tzinfo is not None:
        base = base.astimezone(UTC).replace(tzinfo=None)
    micros = int((frac + "000000")[:6]) if frac.isdigit() else 0
    return base.replace(microsecond=micros)


def usage_between(prev: Previous | None, cur: Reading) -> Usage:
    c = cur.counters
    same_life = (
        prev is not None
        and prev.started_at == cur.started_at
        and c.cpu_ns >= prev.cpu_ns
        and c.rx_bytes >= prev.rx_bytes
        and c.tx_bytes >= prev.tx_bytes
        and cur.read_at > prev.read_at
    )
    if same_life:
        assert prev is not None
        since, cpu, rx, tx = prev.read_at, prev.cpu_ns, prev.rx_bytes, prev.tx_bytes
    else:
        since = parse_started(cur.started_at) or cur.read_at
        cpu = rx = tx = 0
    seconds = (cur.read_at - since).total_seconds()
    cpu_percent = None
    if seconds >= MIN_CPU_WINDOW_S:  # the engine's and our clocks differ by milliseconds
        cpu_percent = max(0.0, (c.cpu_ns - cpu) / (seconds * 1e9) * 100)
    return Usage(cpu_percent, c.memory_bytes, c.rx_bytes - rx, c.tx_bytes - tx)


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def counters_from_stats(stats: dict[str, Any]) -> Counters | None:
    """The Engine API's stats of a container as the counters its cgroup gives: CPU time,
    working set (usage minus inactive file, as `docker stats` and the cgroup reader count
    it), bytes over every interface the engine lists (loopback is not one). None when the
    engine has no counters for it (it stopped, or is gone: a 404's message)."""
    cpu = (stats.get("cpu_stats") or {}).get("cpu_usage") or {}
    memory = stats.get("memory_stats") or {}
    if str(stats.get("read", "")).startswith("0001-") or "usage" not in memory:
        return None
    if "total_usage" not in cpu:
        return None
    detail = memory.get("stats") or {}
    inactive = detail.get("total_inactive_file", detail.get("inactive_file", 0))  # v1 | v2
    networks = (stats.get("networks") or {}).values()
    return Counters(
        cpu_ns=int(cpu["total_usage"]),
        memory_bytes=max(0, int(memory["usage"]) - int(inactive)),
        rx_bytes=sum(int(n.get("rx_bytes", 0)) for n in networks),
        tx_bytes=sum(int(n.get("tx_bytes", 0)) for n in networks),
    )


class Reader(Protocol):
    """What a metrics cycle reads containers with: one engine, or every node of a swarm."""

    @property
    def unreached(self) -> dict[str, str]:
        """Nodes whose engine did not answer in the last read → why (their containers keep
        their last readings, so their usage is counted once when they answer again)."""
        ...

    def read(self) -> list[Reading]: ...


class ContainerReader:
    """Reads every running labelled container of one engine: one listing call, then kernel
    files where the container's processes are on this machine.

    The init pid and start time of each container come from one inspect when the container
    is first seen or its cached pid no longer belongs to it (a restart), not every cycle. A
    container whose pid is not one of this machine's (another machine's engine, or one in
    another pid namespace) is read through the engine's stats instead, and inspected every
    cycle: there is no local pid to tell a restart by, and its StartedAt does.
    """

    def __init__(
        self,
        engine: Engine,
        tenants: frozenset[str] | None = None,
        *,
        node: str = "",
        local: bool = True,
    ) -> None:
        self.engine = engine
        self.tenants = tenants  # None: every labelled container
        self.node = node
        # False: the engine is another machine's, whose pids must not be looked up here
        # (a pid that happens to exist here belongs to some other process).
        self.local = local
        self._lives: dict[str, tuple[int, str]] = {}  # id → (pid here or 0, StartedAt)

    @property
    def unreached(self) -> dict[str, str]:
        return {}  # one engine: unreachable fails the whole read

    def _life(self, container: Container) -> tuple[int, str] | None:
        cached = self._lives.get(container.id)
        if cached and cached[0] > 0 and pid_belongs_to(cached[0], container.id):
            return cached
        found = self.engine.find(container.id)
        state = (found or {}).get("State") or {}
        pid, started = int(state.get("Pid") or 0), str(state.get("StartedAt") or "")
        if pid <= 0:
            self._lives.pop(container.id, None)
            return None
        if not (self.local and pid_belongs_to(pid, container.id)):
            pid = 0
        self._lives[container.id] = (pid, started)
        return pid, started

    def _counters(self, container_id: str, pid: int) -> Counters | None:
        if pid <= 0:
            return counters_from_stats(self.engine.counters(container_id))
        try:
            return read_counters(pid)
        except CgroupMissing:
            return None

    def _read_one(self, container: Container) -> Reading | None:
        life = self._life(container)
        if life is None:
            return None
        counters = self._counters(container.id, life[0])
        if counters is None:
            self._lives.pop(container.id, None)
            return None  # stopped between the listing and the read
        return Reading(
            container.id,
            container.tenant,
            container.deployment,
            container.kind,
            life[1],
            _now(),
            counters,
            self.node,
        )

    def read(self, skip: Set[str] = frozenset()) -> list[Reading]:
        """`skip`: container ids already read from another engine (never read twice)."""
        listed = [
            c
            for c in self.engine.containers(all=False)
            if c.state == "running" and c.tenant and c.deployment and c.kind != "edge"
            if self.tenants is None or c.tenant in self.tenants
            if c.id not in skip
        ]
        if self.local or len(listed) < 2:
            read = [self._read_one(c) for c in listed]
        else:
            # Another node's engine takes about a second per one-shot stats answer (the bench:
            # bench_swarm.py); asked one after another, a node of 60 tasks would fill the
            # metrics interval. Asked together they overlap.
            with ThreadPoolExecutor(max_workers=min(REMOTE_READS_AT_ONCE, len(listed))) as pool:
                read = list(pool.map(self._read_one, listed))
        readings = [r for r in read if r is not None]
        alive = {c.id for c in listed}
        for gone in set(self._lives) - alive:
            del self._lives[gone]
        return readings
