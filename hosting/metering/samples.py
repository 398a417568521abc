"""What collectors produce: metric and storage samples, with ids that make writes idempotent."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

POOL_METRICS = ("pool_clients", "pool_waiting", "pool_servers")
METRICS = (
    "cpu_usage",
    "memory_usage",
    "bandwidth_in",
    "bandwidth_out",
    "requests_count",
    "response_time_avg",
    "error_count",
    # a pooled database's PgBouncer (issue 12): levels at the sample's time
    *POOL_METRICS,
)
STORAGE_TYPES = ("code", "database", "static", "logs", "cache")


def utcnow() -> datetime:
    """Naive UTC, second precision: the store's TIMESTAMP convention."""
    return datetime.now(UTC).replace(tzinfo=None, microsecond=0)


@dataclass(frozen=True)
class MetricSample:
    tenant: str
    deployment: str
    timestamp: datetime  # naive UTC
    cpu_usage: float | None = None
    memory_usage: int | None = None
    bandwidth_in: int | None = None
    bandwidth_out: int | None = None
    requests_count: int | None = None
    response_time_avg: float | None = None
    error_count: int | None = None
    pool_clients: int | None = None  # client connections to the pooler
    pool_waiting: int | None = None  # of which waiting for a server connection
    pool_servers: int | None = None  # server connections the pooler holds open

    @property
    def event_id(self) -> str:
        # One sample per deployment per cycle time: a retried cycle produces the same id.
        return f"m:{self.tenant}/{self.deployment}@{self.timestamp.isoformat()}"


@dataclass(frozen=True)
class StorageSample:
    tenant: str
    deployment: str
    storage_type: str
    size_bytes: int
    file_count: int | None
    last_calculated: datetime  # naive UTC

    @property
    def event_id(self) -> str:
        stamp = self.last_calculated.isoformat()
        return f"s:{self.tenant}/{self.deployment}/{self.storage_type}@{stamp}"
