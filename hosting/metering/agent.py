"""The agent: metrics and the WAL job (sealing, off-host copy) every 60 s, health and the
network rates every 30 s, storage (and alerts) every hour, backups, restore drills and store
snapshots daily, all configurable. Each
job runs on its own: one that fails is logged and retried at its next turn while the others
go on. A stop request (SIGTERM/SIGINT, set by the CLI) ends the loop after the job in
progress. The store is opened per job write and never held in between.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hosting.errors import HostingError
from hosting.metering.alerts import check_alerts
from hosting.metering.containers import ContainerReader, Reader
from hosting.metering.engine import Engine, EngineUnreachable
from hosting.metering.health import RestartPolicy, health_cycle
from hosting.metering.metrics import metrics_cycle
from hosting.metering.nodes import NodesEngine, SwarmReader
from hosting.metering.storage import Credentials, storage_cycle
from hosting.spec.models import Spec

JOBS = ("metrics", "health", "storage", "domains", "network")
LOG_ROLL_BYTES = 10 * 2**20


@dataclass(frozen=True)
class AgentConfig:
    metrics_interval: float = 60.0
    health_interval: float = 30.0
    storage_interval: float = 3600.0
    domains_interval: float = 60.0  # the domain checks pace themselves (every 5 min per domain)
    # The plan's network rate back on a container Docker restarted or recreated (a new veth).
    network_interval: float = 30.0
    # Autoscaled services of a swarm (hosting.metering.autoscale): on the last minutes' CPU.
    autoscale_interval: float = 30.0
    backup_interval: float = 86400.0  # database backups (hosting.backups); 0 disables them
    backup_keep: int = 7
    base_backups: bool = True  # with each backup run: a pg_basebackup + retention (PITR)
    # Archived WAL sealed (encrypted at rest) and, with platform.backups.s3, copied off-host
    # with the base backups; cheap when nothing is new. 0 disables.
    wal_interval: float = 60.0
    drill_interval: float = 86400.0  # restore drills of the newest backups; 0 disables them
    snapshot_interval: float = 86400.0  # store snapshots (hosting.store.snapshots); 0 disables
    snapshot_keep: int = 7
    access_logs: tuple[Path, ...] = ()
    edge_url: str = "https://127.0.0.1:443"
    edge_container: str = ""  # "" → the stack's own, `<platform>_edge`
    restart_after: int = 3  # failed probes in a row before a restart (an app's, or the edge's)
    restart_limit: int = 3  # restarts of one deployment within restart_window, then an alert
    restart_window: float = 900.0


@dataclass
class JobOutcome:
    job: str
    ok: bool
    seconds: float
    summary: dict[str, Any] = field(default_factory=dict)
    error: str | None = None


LogSink = Callable[[str], None]


class Agent:
    def __init__(
        self,
        spec: Spec,
        store_path: Path,
        *,
        spec_dir: Path,
        config: AgentConfig | None = None,
        engine: Engine | None = None,
        credentials: Credentials | None = None,
        log_file: Path | None = None,
        echo: LogSink | None = None,
    ) -> None:
        self.spec = spec
        self.store_path = store_path
        self.spec_dir = spec_dir
        self.config = config or AgentConfig()
        self.engine = engine or Engine(spec.platform.docker.host)
        self.credentials = credentials
        self.log_file = log_file
        self.echo = echo
        tenants = frozenset(spec.tenants)
        nodes = spec.platform.swarm.nodes if spec.platform.target == "swarm" else {}
        self.reader: Reader = (
            SwarmReader(self.engine, nodes, tenants)
            if nodes
            else ContainerReader(self.engine, tenants)
        )
        # Health and storage list every node's containers too (a database task is often on
        # a worker labelled hosting.db=true).
        self.nodes_engine: Engine = NodesEngine(self.engine, nodes) if nodes else self.engine
        self._engine_down = False
        self._unreached_said: dict[str, str] = {}
        self._unshaped_said = False
        self._wal_said: dict[str, str] = {}
        self._copy_due = set(self._databases())  # each checked off-host once after a start

    # --- structured log lines: one JSON object per line, to the file and the echo sink ---
    def log(self, level: str, event: str, **fields: Any) -> None:
        stamp = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        line = json.dumps({"ts": stamp, "level": level, "event": event, **fields}, default=str)
        if self.log_file is not None:
            # A full disk must not stop the agent: its jobs fail and retry on their own.
            with contextlib.suppress(OSError):
                self._append(line)
        if self.echo is not None:
            self.echo(line)

    def _append(self, line: str) -> None:
        assert self.log_file is not None
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        try:
            if self.log_file.stat().st_size > LOG_ROLL_BYTES:  # keep one previous file
                self.log_file.replace(self.log_file.with_name(self.log_file.name + ".1"))
        except FileNotFoundError:
            pass
        with self.log_file.open("a", encoding="utf-8") as fh:
            fh.write(line + "\n")

    def _metrics(self) -> dict[str, Any]:
        r = metrics_cycle(self.store_path, self.reader, self.spec, self.config.access_logs)
        for node, why in r.unreached.items():  # when it starts, not every cycle
            if self._unreached_said.get(node) != why:
                self.log("warning", "node_unreachable", node=node, error=why)
        for node in set(self._unreached_said) - set(r.unreached):
            self.log("info", "node_recovered", node=node)
        self._unreached_said = dict(r.unreached)
        return asdict(r)

    def _health(self) -> dict[str, Any]:
        report = health_cycle(
            self.store_path,
            self.nodes_engine,
            self.spec,
            edge_url=self.config.edge_url,
            edge_container=self.config.edge_container or None,
            policy=RestartPolicy(
                self.config.restart_after, self.config.restart_limit, self.config.restart_window
            ),
        )
        for a in report.alerts:  # one line each, for whoever watches the log
            self.log("warning", "alert", kind=a.kind, tenant=a.tenant, message=a.message)
        results = report.deployments
        counts: dict[str, int] = {}
        for r in results:
            counts[r.status] = counts.get(r.status, 0) + 1
        ref = "{0.tenant}/{0.deployment}".format
        return {
            "checked": len(results),
            "statuses": counts,
            "failing": {ref(r): r.detail for r in results if r.status == "unhealthy"},
            "routes_failing": {
                ref(r): r.route_detail for r in results if r.route_status == "unhealthy"
            },
            "restarted": [ref(r) for r in results if r.restarted],
            "held": [ref(r) for r in results if r.held],
            "edge": asdict(report.edge) if report.edge else None,
            "alerts": [f"{a.kind}: {a.message}" for a in report.alerts],
            "restart_errors": report.restart_errors,
            "unreached": self._nodes_unreached(),
        }

    def _nodes_unreached(self) -> dict[str, str]:
        """The swarm nodes the last health or storage listing could not reach."""
        engine = self.nodes_engine
        return dict(engine.unreached) if isinstance(engine, NodesEngine) else {}

    def _storage(self) -> dict[str, Any]:
        r = storage_cycle(
            self.store_path,
            self.nodes_engine,
            self.spec,
            spec_dir=self.spec_dir,
            credentials=self.credentials,
        )
        alerts = check_alerts(self.store_path, self.spec)
        return {
            "samples": r.samples,
            "errors": r.errors,
            "unreached": self._nodes_unreached(),
            "alerts": [f"{a.tenant} {a.kind} {a.level}: {a.message}" for a in alerts],
        }

    def _domains(self) -> dict[str, Any]:
        # Custom domains waiting for their DNS records are re-checked from here (the domains
        # area paces it); the edge picks newly verified ones up on the next apply.
        from hosting.domains.state import recheck_pending

        checked = recheck_pending(self.spec, self.store_path)
        return {"checked": len(checked)}

    def _network(self) -> dict[str, Any]:
        from hosting.provider.netshape import reconcile

        r = reconcile(self.spec, self.engine)
        if r.skipped is not None and not self._unshaped_said:  # once, not every 30 s
            self.log("warning", "network_rates_not_enforced", reason=r.skipped)
        self._unshaped_said = r.skipped is not None
        summary: dict[str, Any] = {"shaped": r.shaped, "unchanged": r.unchanged}
        return {**summary, "removed": r.removed, "skipped": r.skipped}

    def _autoscale(self) -> dict[str, Any]:
        from hosting.metering.autoscale import run_autoscaler

        events = run_autoscaler(self.spec, self.store_path, self.engine)
        for e in events:  # one line each: the store has them too, for status and reports
            self.log(
                "info",
                "scaled",
                deployment=f"{e.tenant}/{e.deployment}",
                replicas_from=e.from_replicas,
                replicas_to=e.to_replicas,
                reason=e.reason,
            )
        return {"scaled": len(events)}

    def _backups(self) -> dict[str, Any]:
        # Each database on its own: one failed backup is logged and the others still run.
        from hosting.backups import backup_all

        outcomes = backup_all(
            self.spec, self.store_path.parent, keep=self.config.backup_keep, engine=self.engine,
            spec_dir=self.spec_dir,
        )  # fmt: skip
        failed = {f"{o.tenant}/{o.deployment}": o.error for o in outcomes if not o.ok}
        for ref, error in failed.items():
            self.log("error", "backup_failed", deployment=ref, error=error)
        done = [o for o in outcomes if o.ok and not o.skipped]
        summary: dict[str, Any] = {"backed_up": len(done), "failed": failed}
        if self.config.base_backups:
            down = frozenset((o.tenant, o.deployment) for o in outcomes if not o.ok)
            summary.update(self._base_backups(failed, down))
        summary.update(self._offsite_retention(failed))
        return summary

    def _offsite_retention(self, failed: dict[str, str | None]) -> dict[str, Any]:
        # The plan's window applied to the off-host copy too (hosting.backups
        # .offsite_retention), after this run's copies: else the bucket only grows.
        from hosting.backups import pitr
        from hosting.backups.offsite_retention import prune_remote

        s3 = self.spec.platform.backups.s3 if self.spec.platform.backups else None
        if s3 is None:
            return {}
        pruned = 0
        for tid, did in self._databases():
            try:
                days = pitr.retention_days(self.spec, tid)
                pruned += len(prune_remote(s3, self.spec_dir, tid, did, days))
            except HostingError as exc:
                ref = f"{tid}/{did} (off-host retention)"
                self.log("error", "backup_failed", deployment=ref, error=exc.message)
                failed[ref] = exc.message
        return {"offsite_pruned": pruned}

    def _databases(self) -> list[tuple[str, str]]:
        from hosting.spec.models import DatabaseDeployment

        return [
            (tid, did)
            for tid, tenant in self.spec.tenants.items()
            for did, dep in tenant.deployments.items()
            if isinstance(dep, DatabaseDeployment)
        ]

    def _wal(self) -> dict[str, Any]:
        # Every database's archived WAL sealed (hosting.backups.wal_seal; stopped ones too:
        # their archive may hold segments from before), then, with an S3 bucket, the sealed
        # WAL and base backups of those with something new (or whose last copy failed)
        # copied off-host. A failure is logged when it first shows, not every minute.
        from hosting.backups import offsite, wal_seal

        state = self.store_path.parent
        failed: dict[str, str] = {}
        sealed = copied = 0
        for o in wal_seal.seal_all(state, self._databases()):
            ref = f"{o.tenant}/{o.deployment}"
            if o.error:
                failed[ref] = o.error
            elif o.damaged:
                failed[ref] = f"left unsealed, they fail their checksum: {', '.join(o.damaged)}"
            sealed += len(o.sealed)
            if o.sealed:
                self._copy_due.add((o.tenant, o.deployment))
        s3 = self.spec.platform.backups.s3 if self.spec.platform.backups else None
        for tid, did in sorted(self._copy_due):
            if s3 is None:
                break
            try:
                copied += len(offsite.sync_pitr(s3, self.spec_dir, state, tid, did))
                self._copy_due.discard((tid, did))
            except HostingError as exc:
                failed[f"{tid}/{did} (off-host)"] = exc.message
        for ref, error in failed.items():
            if self._wal_said.get(ref) != error:
                self.log("error", "wal_failed", deployment=ref, error=error)
        self._wal_said = failed
        return {"sealed": sealed, "copied": copied, "failed": failed}

    def _base_backups(
        self, failed: dict[str, str | None], down: frozenset[tuple[str, str]]
    ) -> dict[str, Any]:
        # Point-in-time recovery (hosting.backups.pitr): a base backup per database, then
        # its plan's retention of base backups and WAL. Failures join the dumps' failures;
        # a database whose dump just failed is not tried (and reported) twice.
        from hosting.backups.pitr import base_backup_all

        outcomes = base_backup_all(self.spec, self.store_path.parent, engine=self.engine, skip=down)
        for o in outcomes:
            ref = f"{o.tenant}/{o.deployment}"
            if o.skipped:
                self.log("warning", "base_backup_skipped", deployment=ref, reason=o.error)
            elif not o.ok:
                self.log("error", "base_backup_failed", deployment=ref, error=o.error)
                failed[f"{ref} (base backup)"] = o.error
        # The new base backups go off-host now, with the WAL sealed meanwhile.
        self._copy_due |= {(o.tenant, o.deployment) for o in outcomes if o.backup is not None}
        wal = self._wal()
        failed.update({f"{ref} (WAL)": error for ref, error in wal["failed"].items()})
        return {
            "base_backups": sum(o.ok and not o.skipped for o in outcomes),
            "wal_sealed": wal["sealed"], "wal_copied": wal["copied"],
        }  # fmt: skip

    def _backups_first_due(self, now: float) -> float:
        # After a restart, the next backup is one interval after the newest one on disk (the
        # oldest "newest" across database deployments), not one at every start.
        from hosting.backups import list_backups
        from hosting.spec.models import DatabaseDeployment

        newest: list[float] = []
        for tid, tenant in self.spec.tenants.items():
            for did, dep in tenant.deployments.items():
                if isinstance(dep, DatabaseDeployment) and not dep.stopped:
                    found = list_backups(self.store_path.parent, tid, did)
                    if not found:
                        return now
                    try:
                        newest.append(found[-1].path.stat().st_mtime)
                    except OSError:  # pruned just now by a manual run
                        return now
        if not newest:
            return now
        return now + max(0.0, min(newest) + self.config.backup_interval - time.time())

    def _drills(self) -> dict[str, Any]:
        # Each database's newest backup restored into a throwaway container (hosting.backups
        # .drills); a failed drill is recorded and logged, and the job goes on.
        from hosting.backups.drills import drill_all

        results = drill_all(self.spec, self.store_path.parent, self.store_path)
        failed = {f"{r.tenant}/{r.deployment}": r.reason for r in results if not r.ok}
        for ref, reason in failed.items():
            self.log("error", "restore_drill_failed", deployment=ref, error=reason)
        return {"drilled": len(results), "failed": failed}

    def _drills_first_due(self, now: float) -> float:
        # One interval after the newest recorded drill, not one at every start.
        from hosting.backups.drills import newest_drill_time

        newest = newest_drill_time(self.store_path)
        if newest is None:
            return now
        age = (datetime.now(UTC).replace(tzinfo=None) - newest).total_seconds()
        return now + max(0.0, self.config.drill_interval - age)

    def _snapshot(self) -> dict[str, Any]:
        from hosting.store.snapshots import take

        if not self.store_path.exists():
            return {"snapshot": None, "removed": []}
        taken = take(self.store_path, keep=self.config.snapshot_keep)
        return {"snapshot": str(taken.snapshot.path), "removed": list(taken.removed)}

    def _snapshot_first_due(self, now: float) -> float:
        # As with backups: one interval after the newest snapshot on disk, not one per start.
        from hosting.store.snapfiles import newest

        found = newest(self.store_path)
        if found is None:
            return now
        try:
            mtime = found.path.stat().st_mtime
        except OSError:
            return now
        return now + max(0.0, mtime + self.config.snapshot_interval - time.time())

    def run_job(self, job: str) -> JobOutcome:
        fn = {
            "metrics": self._metrics,
            "health": self._health,
            "storage": self._storage,
            "domains": self._domains,
            "network": self._network,
            "autoscale": self._autoscale,
            "backups": self._backups,
            "drills": self._drills,
            "snapshot": self._snapshot,
            "wal": self._wal,
        }[job]
        started = time.monotonic()
        try:
            summary = fn()
        except EngineUnreachable as exc:
            if not self._engine_down:
                self.log("error", "docker_unreachable", job=job, error=exc.message, hint=exc.hint)
            self._engine_down = True
            # Say it in the result too: with Docker gone, the health job restarted nothing.
            nothing: dict[str, Any] = {"restarted": []} if job == "health" else {}
            return JobOutcome(job, False, time.monotonic() - started, nothing, exc.message)
        except HostingError as exc:
            self.log("error", "job_failed", job=job, error=exc.message)
            return JobOutcome(job, False, time.monotonic() - started, error=exc.message)
        except Exception as exc:  # one collector's bug must not stop the others
            text = f"{type(exc).__name__}: {exc}"
            self.log("error", "job_failed", job=job, error=text, trace=traceback.format_exc())
            return JobOutcome(job, False, time.monotonic() - started, error=text)
        if self._engine_down and job != "domains":  # only a Docker job proves it is back
            self._engine_down = False
            self.log("info", "docker_recovered", job=job)
        seconds = time.monotonic() - started
        self.log("info", job, seconds=round(seconds, 3), **summary)
        return JobOutcome(job, True, seconds, summary)

    @property
    def jobs(self) -> tuple[str, ...]:
        """The jobs of every cycle: on a swarm, autoscaling too."""
        return (*JOBS, "autoscale") if self.spec.platform.target == "swarm" else JOBS

    def run_once(self) -> list[JobOutcome]:
        return [self.run_job(job) for job in self.jobs]

    def run_due_backups(self) -> JobOutcome | None:
        """The backup job as the agent's schedule would run it now: None when disabled
        (interval 0), a no-op outcome when not due, else a run whose failed backups make it
        a failure (for `meter --once`, whose exit code must tell cron)."""
        if self.config.backup_interval <= 0:
            return None
        now = time.monotonic()
        if self._backups_first_due(now) > now:
            return JobOutcome("backups", True, 0.0, {"due": False})
        outcome = self.run_job("backups")
        failed: dict[str, str] = outcome.summary.get("failed") or {}
        if outcome.ok and failed:
            error = "; ".join(f"{ref}: {why}" for ref, why in failed.items())
            return JobOutcome("backups", False, outcome.seconds, outcome.summary, error)
        return outcome

    def run_due_drills(self) -> JobOutcome | None:
        """Restore drills as the schedule would run them now (for `meter --once`): None when
        disabled, a no-op outcome when not due, a failure when a drill failed."""
        if self.config.drill_interval <= 0:
            return None
        now = time.monotonic()
        if self._drills_first_due(now) > now:
            return JobOutcome("drills", True, 0.0, {"due": False})
        outcome = self.run_job("drills")
        failed: dict[str, str] = outcome.summary.get("failed") or {}
        if outcome.ok and failed:
            error = "; ".join(f"{ref}: restore drill failed: {why}" for ref, why in failed.items())
            return JobOutcome("drills", False, outcome.seconds, outcome.summary, error)
        return outcome

    def run_wal(self) -> JobOutcome | None:
        """The WAL job now (for `meter --once`): None when disabled; a failure when a
        database's WAL could not be sealed or copied."""
        if self.config.wal_interval <= 0:
            return None
        outcome = self.run_job("wal")
        failed: dict[str, str] = outcome.summary.get("failed") or {}
        if outcome.ok and failed:
            error = "; ".join(f"{ref}: {why}" for ref, why in failed.items())
            return JobOutcome("wal", False, outcome.seconds, outcome.summary, error)
        return outcome

    def run_due_snapshot(self) -> JobOutcome | None:
        """The store snapshot as the schedule would take it now (for `meter --once`): None
        when disabled, a no-op outcome when not due."""
        if self.config.snapshot_interval <= 0:
            return None
        now = time.monotonic()
        if self._snapshot_first_due(now) > now:
            return JobOutcome("snapshot", True, 0.0, {"due": False})
        return self.run_job("snapshot")

    def run(self, stop: threading.Event) -> None:
        intervals = {
            "metrics": self.config.metrics_interval,
            "health": self.config.health_interval,
            "storage": self.config.storage_interval,
            "domains": self.config.domains_interval,
            "network": self.config.network_interval,
            "autoscale": self.config.autoscale_interval,
            "backups": self.config.backup_interval,
            "drills": self.config.drill_interval,
            "snapshot": self.config.snapshot_interval,
            "wal": self.config.wal_interval,
        }
        self.log("info", "agent_started", **{f"{k}_interval": v for k, v in intervals.items()})
        optional = ("backups", "drills", "snapshot", "wal")
        daily = tuple(job for job in optional if intervals[job] > 0)
        jobs = (*self.jobs, *daily)
        due = dict.fromkeys(jobs, time.monotonic())
        if "backups" in due:
            due["backups"] = self._backups_first_due(due["backups"])
        if "drills" in due:
            due["drills"] = self._drills_first_due(due["drills"])
        if "snapshot" in due:
            due["snapshot"] = self._snapshot_first_due(due["snapshot"])
        while not stop.is_set():
            now = time.monotonic()
            for job in jobs:
                if stop.is_set():
                    break
                if due[job] <= now:
                    self.run_job(job)
                    # Fixed rate, but never a burst of catch-up runs after a slow cycle.
                    due[job] = max(due[job] + intervals[job], time.monotonic())
            stop.wait(max(0.0, min(due.values()) - time.monotonic()))
        self.log("info", "agent_stopped")
