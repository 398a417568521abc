"""Automation API driver: one stack per platform, local file backend in the state directory,
passphrase secrets, inline program. Everything pulumi is imported lazily in here."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from hosting.databases import upgrade
from hosting.databases.local import data_version
from hosting.edge.caddy import build_config, push_config
from hosting.engine import locate as engine
from hosting.errors import (
    ConcurrentUpdateError,
    HostingError,
    ProviderError,
    SecretError,
    UsageError,
)
from hosting.provider import (
    edge_links,
    firewall,
    netshape,
    poolers,
    runtime,
    swarm,
    volume_quota,
)
from hosting.provider.engine_cli import run_with_stdin
from hosting.provider.events import Collector, Step
from hosting.provider.saved_plan import Fingerprint, file_sha256, secret_digest
from hosting.sources.build import static_sites
from hosting.spec import names
from hosting.spec.models import DatabaseDeployment, Spec
from hosting.stacks.containers import EDGE_CA_ROOT, write_host_files
from hosting.stacks.desired import database_volume_device, desired_containers
from hosting.stacks.settings import (
    DatabaseAccess,
    ProgramSettings,
    database_keys,
    derived_password,
    ensure_databases,
    resolve_secrets,
)

STACK = "hosting"
DATABASES_KEY = "hosting:databases"  # secret JSON: {"tenant/deployment": {user, password, port}}


@dataclass
class Result:
    steps: list[Step]
    outputs: dict[str, Any] = field(default_factory=dict)
    diagnostics: list[str] = field(default_factory=list)
    targets: list[Step] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # protections this host lacks
    # on a swarm: node → the images apply loaded there (hosting.provider.swarm_images)
    images_loaded: dict[str, list[str]] = field(default_factory=dict)
    upgraded: list[str] = field(default_factory=list)  # major upgrades done, one line each
    # pending major upgrades a preview declared (hosting.databases.upgrade)
    migrations: list[upgrade.Upgrade] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.steps)


@dataclass
class SavablePreview(Result):
    """A preview with what a saved plan needs: the fingerprint and the engine's plan."""

    fingerprint: Fingerprint | None = None
    engine_plan: dict[str, Any] = field(default_factory=dict)


def verified_domains(spec: Spec, state_dir: Path) -> frozenset[str]:
    """Custom domains whose DNS records are verified. The domains module provides
    `hosting.edge.domains.verified_domains(spec, state_dir)`; until it exists, none are."""
    try:
        from hosting.edge import domains  # type: ignore[attr-defined, unused-ignore]
    except ImportError:
        return frozenset()
    fn = getattr(domains, "verified_domains", None)
    if fn is None:
        return frozenset()
    return frozenset(fn(spec, state_dir))


def suspended_tenants(state_dir: Path) -> frozenset[str]:
    """Tenants suspended for an unpaid invoice (issue 15): apply stops their web and API
    deployments and the edge answers them with 402, until the invoice is paid."""
    from hosting.payments.suspension import suspended_tenants as in_store

    return in_store(state_dir / "hosting.duckdb")


class Driver:
    def __init__(
        self,
        spec: Spec,
        *,
        state_dir: Path,
        base_dir: Path,
        backend: str | None = None,
        passphrase: str | None = None,
        on_step: Callable[[Step], None] | None = None,
        allow_major_upgrade: bool = False,
        spec_file: Path | None = None,
        tenant: str | None = None,
    ) -> None:
        self.spec = spec
        # PostgreSQL major upgrades (hosting.databases.upgrade): allowed by the flag, within
        # `tenant`'s databases only when the apply is limited to one; the file locates errors.
        self.allow_major_upgrade = allow_major_upgrade
        self.spec_file = spec_file
        self.tenant = tenant
        self.upgrades: list[upgrade.Upgrade] = []
        self._recorded: dict[str, DatabaseAccess] = {}  # before the upgrades
        self.state_dir = state_dir.resolve()
        self.base_dir = base_dir.resolve()
        self.backend = backend or f"file://{self.state_dir / 'pulumi'}"
        self.passphrase = passphrase
        self.on_step = on_step
        self._stack_obj: Any = None
        self._settings_used = ProgramSettings(databases={})
        self._scratch: tempfile.TemporaryDirectory[str] | None = None

    # -- workspace ---------------------------------------------------------------------
    def _workspace(self, read_only: bool) -> tuple[Path, Path]:
        """(work directory, Pulumi home). A read-only operation (plan, diff, fingerprint) runs
        in a scratch copy of both, so it writes nothing under the state directory or the
        engine's: a pull-request preview needs only read access to them."""
        work = self.state_dir / "work"
        home = engine.pulumi_home(self.state_dir)
        if not read_only or not (work / f"Pulumi.{STACK}.yaml").is_file():
            # No stack yet: the first plan creates it, which needs write access once.
            work.mkdir(parents=True, exist_ok=True)
            return work, home
        if self._scratch is None:
            self._scratch = tempfile.TemporaryDirectory(prefix="hosting-readonly-")
        root = Path(self._scratch.name)
        (root / "work").mkdir(exist_ok=True)
        shutil.copy2(work / f"Pulumi.{STACK}.yaml", root / "work" / f"Pulumi.{STACK}.yaml")
        (root / "home").mkdir(exist_ok=True)
        plugins = root / "home" / "plugins"
        if not plugins.exists():
            plugins.symlink_to(home / "plugins", target_is_directory=True)
        return root / "work", root / "home"

    def _stack(self, *, read_only: bool = False) -> Any:
        cmd = engine.command(self.state_dir)  # EngineMissingError before anything else
        from pulumi import automation as auto

        if self.passphrase is None:
            raise SecretError(
                "no passphrase for the stack's secrets",
                "set HOSTING_PASSPHRASE (it encrypts database passwords and secret env vars)",
            )
        work, home = self._workspace(read_only)
        if self.backend.startswith("file://") and work.is_relative_to(self.state_dir):
            Path(self.backend[len("file://") :]).mkdir(parents=True, exist_ok=True)
        project = auto.ProjectSettings(
            name=self.spec.platform.name,
            runtime="python",
            backend=auto.ProjectBackend(url=self.backend),
        )
        opts = auto.LocalWorkspaceOptions(
            work_dir=str(work),
            pulumi_home=str(home),
            env_vars={
                "PULUMI_BACKEND_URL": self.backend,
                "PULUMI_CONFIG_PASSPHRASE": self.passphrase,
                "PULUMI_SKIP_UPDATE_CHECK": "true",
            },
            secrets_provider="passphrase",
            project_settings=project,
            pulumi_command=cmd,
        )
        try:
            return auto.create_or_select_stack(
                STACK, project_name=self.spec.platform.name, program=lambda: None, opts=opts
            )
        except auto.CommandError as exc:
            raise ProviderError(_first_error(str(exc))) from None

    @staticmethod
    def _stored_databases(stack: Any) -> dict[str, DatabaseAccess]:
        config = stack.get_all_config()
        if DATABASES_KEY not in config:
            return {}
        raw = json.loads(config[DATABASES_KEY].value)
        return {k: DatabaseAccess.from_json(v) for k, v in raw.items()}

    @staticmethod
    def _store_databases(stack: Any, databases: dict[str, DatabaseAccess]) -> None:
        # Not stack.set_config: it passes the value as an argument, and any local user can
        # read a process's arguments. `pulumi config set` reads a missing value from stdin.
        blob = json.dumps({k: v.to_json() for k, v in sorted(databases.items())})
        args = ["config", "set", DATABASES_KEY, "--secret", "--stack", stack.name]
        done = run_with_stdin(stack.workspace, args, blob)
        if done.returncode != 0:
            raise ProviderError(_first_error(done.stderr))

    def _running_data_version(self, key: str) -> int | None:
        """The data version of a database's running primary (target docker; a swarm is not
        upgraded), for a config recorded before versions were."""
        if self.spec.platform.target != "docker":
            return None
        tid, did = key.split("/")
        primary = names.container_name(self.spec.platform.name, tid, did, 0)
        return data_version(self.spec.platform.docker.host, primary)

    def _settings(self, stack: Any, *, persist: bool, upgrades: bool = False) -> ProgramSettings:
        """`upgrades`: plan or apply, which decide pending major upgrades (refused, or
        declared as done); other operations see each database as it runs."""
        existing = self._stored_databases(stack)
        assert self.passphrase is not None  # _stack() refuses without one
        passphrase, platform = self.passphrase, self.spec.platform.name
        databases = ensure_databases(
            self.spec,
            existing,
            lambda key: derived_password(passphrase, platform, key),
            self._running_data_version,
        )
        if persist and databases != existing:
            self._store_databases(stack, databases)
        self._recorded = databases
        self.upgrades = [
            u
            for u in upgrade.pending(self.spec, databases)
            if upgrades and (self.tenant is None or u.tenant == self.tenant)
        ]
        upgrade.check(
            self.spec, self.upgrades, allowed=self.allow_major_upgrade, spec_file=self.spec_file
        )
        # The program declares the databases as they are once upgraded: a plan shows the new
        # volume and the replaced container, which a saved plan's apply then may take.
        databases = upgrade.upgraded(databases, self.upgrades)
        if persist:
            for sub in ("edge/admin", "edge/logs", "logs/build"):
                (self.state_dir / sub).mkdir(parents=True, exist_ok=True)
        settings = ProgramSettings(
            databases=databases,
            secret_values=resolve_secrets(self.spec, self.base_dir),
            state_dir=self.state_dir,
            base_dir=self.base_dir,
            verified_domains=verified_domains(self.spec, self.state_dir),
            suspended=suspended_tenants(self.state_dir),
            # a limit over a node's CPUs fails there; on a swarm, the smallest node's
            host_cpus=swarm.node_cpus(self.spec)
            if self.spec.platform.target == "swarm"
            else runtime.engine_cpus(self.spec),
            io_device=runtime.io_device(self.spec),
            # the edge's node: where this runs (static folders, the admin socket)
            edge_node_id=swarm.own_node_id(self.spec)
            if self.spec.platform.target == "swarm"
            else None,
            volume_root=(
                volume_quota.root_of(self.state_dir)
                if volume_quota.usable(self.spec) is None
                else None
            ),
            unbounded_volumes=(
                runtime.plain_database_volumes(self.spec, self._volume_names(databases))
                if volume_quota.usable(self.spec) is None
                else frozenset()
            ),
        )
        if persist:
            for container in desired_containers(self.spec, settings).every_container():
                write_host_files(container)
        self._settings_used = settings
        return settings

    def _volume_names(self, databases: dict[str, DatabaseAccess]) -> dict[str, list[str]]:
        """Each database's data volume, then the one before a pending upgrade: the new one
        is plain, like the old, when the old one was (hosting.provider.runtime)."""
        platform = self.spec.platform.name
        out: dict[str, list[str]] = {}
        for key, access in databases.items():
            tid, did = key.split("/")
            before = self._recorded.get(key, access)
            out[key] = [
                upgrade.volume_name(platform, tid, did, access),
                upgrade.volume_name(platform, tid, did, before),
            ]
        return out

    def _upgrade_databases(self, stack: Any) -> list[str]:
        """Before the engine: each pending major upgrade migrated (hosting.databases.
        upgrade_run), and recorded once it is, so the program switches to its new volume and
        version. The first failure stops apply, its database serving as before."""
        from hosting.databases.upgrade_run import migrate

        done: list[str] = []
        for up in self.upgrades:
            before = self._recorded[up.ref]
            device = (
                database_volume_device(self._settings_used, up.tenant, up.deployment)
                if self._settings_used.volume_root is not None
                else None
            )
            outcome = migrate(self.spec, self.state_dir, up, before, device=device)
            stored = self._stored_databases(stack)
            stored[up.ref] = replace(before, version=up.new, upgraded=True)
            self._store_databases(stack, stored)
            done.append(
                f"{up.ref}: upgraded PostgreSQL {up.old} → {up.new} ({outcome.tables} tables, "
                f"{outcome.rows} rows checked) onto {outcome.volume}; {outcome.retired_volume} "
                f"and the old WAL archive ({outcome.retired_folder.name}) are kept until "
                f"`hosting backup prune {up.ref} --yes`"
            )
        return done

    def _base_backups_after_upgrade(self) -> list[str]:
        """A new version cannot replay the old one's base backups: point-in-time recovery
        starts again from a base backup of the upgraded server."""
        from hosting.backups import pitr

        warnings = []
        for up in self.upgrades:
            try:
                pitr.base_backup(self.spec, self.state_dir, up.tenant, up.deployment)
            except HostingError as exc:
                warnings.append(
                    f"{up.ref}: no base backup after the upgrade ({exc.message}); run "
                    f"`hosting backup base {up.ref}`: until one is made it has no "
                    "point-in-time recovery"
                )
        return warnings

    def _prepared(self, *, persist: bool, read_only: bool = False, upgrades: bool = False) -> Any:
        stack = self._stack(read_only=read_only)
        settings = self._settings(stack, persist=persist, upgrades=upgrades)
        from pulumi import automation as auto

        from hosting.stacks import program

        # The program needs the persisted settings, which need the stack: swap it in.
        stack.workspace.program = program(self.spec, settings)
        assert isinstance(stack, auto.Stack)
        engine.require_plugin(self.state_dir)
        return stack

    # -- operations --------------------------------------------------------------------
    def preview(self, save_plan: Path | None = None) -> Result:
        """What apply would change, measured against the engine as it is now (refreshed, as
        Terraform plans): a container removed by hand shows up as a create.

        With `save_plan`, the engine also writes its update plan there. Nothing is written
        to the state: new databases' passwords are derived (see `derived_password`), so the
        apply of a saved plan computes the same ones."""
        stack = self._prepared(persist=False, read_only=True, upgrades=True)
        collector = Collector(self.on_step)
        plan = None if save_plan is None else str(save_plan)
        self._run(
            lambda out: stack.preview(on_event=collector, refresh=True, on_output=out, plan=plan),
            collector,
        )
        return Result(
            collector.changes(),
            diagnostics=collector.diagnostics,
            targets=collector.targets(),
            migrations=list(self.upgrades),
        )

    def preview_to_save(self, spec_file: Path, tenant: str | None) -> SavablePreview:
        """A preview whose engine plan and fingerprint are kept, fingerprinted before and
        after, so an apply that ran meanwhile cannot slip into the saved plan unnoticed."""
        before = self.fingerprint(spec_file, tenant)
        with tempfile.TemporaryDirectory(prefix="hosting-plan-") as scratch:
            path = Path(scratch) / "engine-plan.json"
            result = self.preview(save_plan=path)
            engine_plan = json.loads(path.read_text())
        after = self.fingerprint(spec_file, tenant)
        if after.stack_update != before.stack_update:
            raise ConcurrentUpdateError(
                "the stack was updated while the plan was being made; nothing was saved",
                "run `hosting plan --out FILE` again",
            )
        return SavablePreview(
            result.steps,
            diagnostics=result.diagnostics,
            targets=result.targets,
            migrations=result.migrations,
            fingerprint=after,
            engine_plan=engine_plan,
        )

    def fingerprint(self, spec_file: Path, tenant: str | None = None) -> Fingerprint:
        """What a saved plan is made from, as it is now (see hosting.provider.saved_plan)."""
        from hosting import __version__
        from hosting.engine.pins import CLI_VERSION, DOCKER_PLUGIN_VERSION

        stack = self._stack(read_only=True)
        assert self.passphrase is not None  # _stack() refuses without one
        history = stack.history(page_size=1, show_secrets=False)
        # A file backend numbers every update 0: the times tell updates apart.
        last = history[0] if history else None
        update = (
            f"{last.kind} #{last.version} {last.start_time:%Y-%m-%dT%H:%M:%S}Z → "
            f"{last.end_time:%H:%M:%S}Z {last.result}"
            if last is not None
            else ""
        )
        values = dict(resolve_secrets(self.spec, self.base_dir))
        config = stack.get_all_config()
        if DATABASES_KEY in config:
            for ref, access in json.loads(config[DATABASES_KEY].value).items():
                values[f"{ref} (database password)"] = str(access.get("password", ""))
                if access.get("login_password"):  # rotated (hosting.databases.roles)
                    values[f"{ref} (database login {access.get('generation')})"] = str(
                        access["login_password"]
                    )
        return Fingerprint(
            spec_file=str(spec_file),
            spec_sha256=file_sha256(spec_file),
            stack_update=update,
            tool_version=__version__,
            engine=f"pulumi {CLI_VERSION}, docker plugin {DOCKER_PLUGIN_VERSION}",
            secrets={k: secret_digest(self.passphrase, k, v) for k, v in sorted(values.items())},
            tenant=tenant,
        )

    def previous_outputs(self) -> dict[str, Any]:
        """Outputs of the last `apply` (empty before the first)."""
        try:
            stack = self._stack(read_only=True)
            return {k: v.value for k, v in stack.outputs().items()}
        except ProviderError:
            return {}

    def up(self, targets: list[str] | None = None, plan: Path | None = None) -> Result:
        """Apply; with `plan` (the engine's update plan of a saved plan), any step beyond
        it fails the update instead of being taken."""
        stack = self._prepared(persist=True, upgrades=True)
        collector = Collector(self.on_step)
        swarm = self.spec.platform.target == "swarm"
        warnings = [] if swarm else self.prepare_host()  # may refuse: before anything changes
        loaded = self._images_to_nodes() if swarm else {}  # may refuse too
        upgraded = self._upgrade_databases(stack) if self.upgrades else []
        if not swarm:
            edge_links.leave_removed(self.spec)
        if targets:
            # The engine checks --target against the state before the program runs, so a
            # refresh inside a targeted up refuses new resources: refresh on its own first.
            reads = Collector()
            self._run(lambda out: stack.refresh(on_event=reads, on_output=out), reads)
        res = self._run(
            lambda out: stack.up(
                on_event=collector,
                target=targets,
                refresh=not targets,
                on_output=out,
                plan=None if plan is None else str(plan),
            ),
            collector,
        )
        outputs = {k: v.value for k, v in res.outputs.items()}
        if self.spec.platform.target == "swarm":
            # The host-local steps below act on this engine's containers and veths; a swarm's
            # tasks run on its nodes (README: "Swarm target" says what is not enforced).
            self.load_edge()
            return Result(
                collector.changes(),
                outputs,
                collector.diagnostics,
                warnings=warnings,
                images_loaded=loaded,
            )
        runtime.enforce_pids_limits(self.spec, self._pids_limits(self._settings_used))
        # Only a complete apply has rolled every dependant of a rotated database; before the
        # poolers' verifiers are synced, so a login a restore took away is there again.
        warnings += self._retire_rotated(stack) if not targets else self._retiring_pending()
        warnings += poolers.sync_verifiers(self.spec, self._settings_used)  # SCRAM pass-through
        warnings += netshape.enforce(self.spec)  # the plan's network rate: tc on the veths
        warnings += self.guard_host()
        edge_links.join_all(self.spec)
        self.load_edge()
        warnings += self._prepare_replication()
        warnings += self._base_backups_after_upgrade() if upgraded else []
        return Result(
            collector.changes(), outputs, collector.diagnostics, warnings=warnings,
            upgraded=upgraded,
        )  # fmt: skip

    def _images_to_nodes(self) -> dict[str, list[str]]:
        """On a swarm, before the engine: the images built and pulled here loaded on each
        node that may run them (hosting.provider.swarm_images). Node → images loaded."""
        from hosting.provider import swarm_images
        from hosting.sources.build import source_builds
        from hosting.sources.context_build import built_images

        built = set(built_images(self.spec, self.base_dir).values())
        built |= {b.tag for b in source_builds(self.spec, self.base_dir) if not b.detected.static}
        desired = desired_containers(self.spec, self._settings_used)
        return swarm_images.distribute(self.spec, desired, frozenset(built))

    def prepare_host(self) -> list[str]:
        """Before the engine starts a database: each tenant's databases' filesystem of the
        plan's storage mounted, and grown with the plan (hosting.provider.volume_quota).
        Tenants gone from the file are unmounted, their images kept. Returns warnings."""
        wanted = volume_quota.wanted(self.spec)
        why = volume_quota.usable(self.spec)
        if why is not None:
            return [f"database volumes are not size-bounded: {why}"] if wanted else []
        root = volume_quota.root_of(self.state_dir)
        if os.geteuid() != 0:
            missing = volume_quota.unmounted(root, wanted)
            if missing:
                raise ProviderError(
                    f"the databases' filesystems of {', '.join(missing)} are not mounted, "
                    "and mounting needs root; nothing was applied",
                    "run `hosting apply` as root (it mounts them, and after a reboot again)",
                )
            return ["the databases' filesystems were not checked for growth: it needs root"]
        report = volume_quota.ensure(root, wanted)
        volume_quota.unmount(root, keep=wanted)
        report.warnings.extend(
            f"{ref}: its database volume predates size-bounded volumes and stays a plain "
            "volume on the host's disk (back it up, remove it with the database, restore)"
            for ref in sorted(self._settings_used.unbounded_volumes)
        )
        if report.mounted:
            # After a reboot the engine could not start these databases (their directory
            # did not exist until now): start them, as the restart policy would have.
            found = runtime.containers(self.spec)
            for tenant in report.mounted:
                for did in wanted[tenant].deployments:
                    name = names.container_name(self.spec.platform.name, tenant, did, 0)
                    if name in found and not found[name]["State"]["Running"]:
                        runtime.docker(self.spec, "start", name)
        return report.warnings

    def guard_host(self) -> list[str]:
        """After the engine: the tenant firewall rebuilt from the tenant networks that exist
        now (hosting.provider.firewall). Returns warnings."""
        s = self._settings_used
        warning = firewall.sync(self.spec, (s.edge_http_port, s.edge_https_port))
        return [warning] if warning else []

    def _pids_limits(self, settings: ProgramSettings) -> dict[str, int]:
        desired = desired_containers(self.spec, settings)
        return {c.name: c.pids_limit for c in desired.every_container()}

    def destroy(self, *, delete_data: bool = False) -> Result:
        stack = self._prepared(persist=False)
        collector = Collector(self.on_step)
        self._run(lambda out: stack.destroy(on_event=collector, on_output=out), collector)
        # The poolers' config (SCRAM verifiers among it) outlives no pooler.
        shutil.rmtree(self.state_dir / "pooler", ignore_errors=True)
        warnings = self.guard_host()  # no tenant network left: the firewall's chains go
        if delete_data:
            # Data volumes are retained on delete (state records that at apply). Removing
            # the platform's volumes afterwards needs no apply first, which would create
            # whatever the file has and the stack does not.
            runtime.remove_volumes(self.spec)
        root = volume_quota.root_of(self.state_dir)
        if volume_quota.usable(self.spec) is None and os.geteuid() == 0:
            # Images are kept with the volumes, deleted with them (data safety first).
            busy = volume_quota.delete(root) if delete_data else volume_quota.unmount(root)
            warnings += [f"{t}: its databases' filesystem is still in use" for t in busy]
        elif volume_quota.usable(self.spec) is None and volume_quota.wanted(self.spec):
            warnings.append("the databases' filesystems stay mounted: unmounting needs root")
        return Result(collector.changes(), diagnostics=collector.diagnostics, warnings=warnings)

    def refresh(self) -> Result:
        stack = self._prepared(persist=False)
        collector = Collector(self.on_step)
        self._run(lambda out: stack.refresh(on_event=collector, on_output=out), collector)
        return Result(collector.changes(), diagnostics=collector.diagnostics)

    def drift(self) -> Result:
        """What a refresh would write back: resources changed or removed on the engine since
        the last apply, read without changing the state (`pulumi refresh --preview-only`)."""
        stack = self._prepared(persist=False, read_only=True)
        collector = Collector()
        self._run(lambda out: stack.preview_refresh(on_event=collector, on_output=out), collector)
        return Result(collector.changes(), diagnostics=collector.diagnostics)

    def outputs(self) -> dict[str, Any]:
        stack = self._stack(read_only=True)
        return {k: v.value for k, v in stack.outputs().items()}

    def change_passphrase(self, new: str) -> None:
        """Re-encrypt the stack's secrets under `new` (see hosting.provider.passphrase)."""
        from hosting.provider.passphrase import re_encrypt

        old = self.passphrase
        assert old is not None

        def open_with(phrase: str) -> Any:
            self.passphrase = phrase
            return self._stack()

        backend = (
            Path(self.backend[len("file://") :]) if self.backend.startswith("file://") else None
        )
        try:
            re_encrypt(open_with, old, new, backend)
        except BaseException:
            self.passphrase = old
            raise

    def rotate_database(self, tenant: str, deployment: str) -> DatabaseAccess:
        """A new login (role and password) for tenant/deployment next to the current one,
        which stays valid until an apply has rolled the deployments that use it (see
        hosting.databases.roles). Returns the new access; the config records it only once
        the role exists."""
        from hosting.backups.pg import locate
        from hosting.databases.local import run_sql
        from hosting.databases.roles import create_login_sql
        from hosting.metering.engine import Engine
        from hosting.stacks.settings import new_password

        key = f"{tenant}/{deployment}"
        if self.spec.platform.target == "swarm":
            raise UsageError(
                "`secrets rotate` runs on platform.target docker only so far",
                "on a swarm, the database's task is on another node than this command",
            )
        stack = self._stack()
        databases = self._stored_databases(stack)
        if key not in databases:
            raise ProviderError(
                f"{key} has no credentials yet: it has not been applied",
                "run `hosting apply` first; a new database gets a fresh password anyway",
            )
        target = locate(self.spec, Engine(self.spec.platform.docker.host), tenant, deployment)
        old = databases[key]
        new = DatabaseAccess(
            user=old.user,
            password=old.password,
            port=old.port,
            generation=old.generation + 1,
            login_password=new_password(),
            retiring=(*old.retiring, old.generation),
        )
        assert new.login_password is not None
        run_sql(
            self.spec.platform.docker.host,
            target.container,
            old.user,
            target.dbname,
            create_login_sql(old.user, new.generation, new.login_password),
        )
        databases[key] = new
        self._store_databases(stack, databases)
        return new

    def _prepare_replication(self) -> list[str]:
        """Each primary with read replicas ready to feed them (role, pg_hba, slots), and the
        slots and copies of replicas no longer declared removed. Replicas wait for this on
        their first start."""
        from hosting.backups.pg import locate
        from hosting.databases.replication import prepare_primary
        from hosting.metering.engine import Engine

        root = self._settings_used.volume_root
        if root is not None:
            volume_quota.remove_stale_replicas(root, volume_quota.wanted(self.spec))
        warnings: list[str] = []
        engine = Engine(self.spec.platform.docker.host)
        for key, access in sorted(self._settings_used.databases.items()):
            tid, did = key.split("/")
            dep = self.spec.tenants[tid].deployments.get(did) if tid in self.spec.tenants else None
            if access.replication_password is None or not isinstance(dep, DatabaseDeployment):
                continue
            if dep.stopped:
                continue
            # A new primary is still initialising when the engine reports it running.
            primary = names.container_name(self.spec.platform.name, tid, did, 0)
            late = self._await_healthy(engine, {primary})
            if late:
                warnings.append(f"{key}: its read replicas could not be fed (the primary is "
                                "not answering yet); the next apply feeds them")  # fmt: skip
                continue
            try:
                target = locate(self.spec, engine, tid, did)
                prepare_primary(
                    self.spec.platform.docker.host,
                    target.container,
                    access.user,
                    target.dbname,
                    access.replication_password,
                    dep.replicas,
                )
            except HostingError as exc:
                warnings.append(f"{key}: its read replicas could not be fed ({exc.message})")
                continue
            # Apply returns once the replicas answer (a new one clones its primary first), so
            # a `read_url` works when it does.
            standbys = {
                names.container_name(self.spec.platform.name, tid, did, i)
                for i in range(1, dep.replicas + 1)
            }
            late = self._await_healthy(engine, standbys)
            if late:
                warnings.append(f"{key}: read replicas not answering yet: {', '.join(late)}")
        return warnings

    @staticmethod
    def _await_healthy(engine: Any, wanted: set[str], timeout_s: float = 180.0) -> list[str]:
        """Wait until each named container's health check passes; the ones that did not."""
        deadline = time.monotonic() + timeout_s
        while True:
            healthy = {
                c.name
                for c in engine.containers(all=False)
                if c.name in wanted and c.health == "healthy"
            }
            if healthy == wanted or time.monotonic() > deadline:
                return sorted(wanted - healthy)
            time.sleep(1)

    def _retiring_pending(self) -> list[str]:
        databases = self._settings_used.databases
        return [
            f"{key}: its previous password stays valid until a complete `hosting apply` "
            "(this one was targeted)"
            for key, access in sorted(databases.items())
            if access.retiring
        ]

    def _retire_rotated(self, stack: Any) -> list[str]:
        """Once every dependant runs with a rotated database's current login: that login is
        there (made again if a point-in-time restore went back to before it) and every older
        one is retired, again if a restore brought it back. A database that cannot be reached
        keeps its pending retirements, with a warning, for the next apply."""
        from hosting.backups.pg import locate
        from hosting.databases.local import run_sql
        from hosting.databases.roles import ensure_login_sql, retire_login_sql
        from hosting.metering.engine import Engine
        from hosting.stacks.pooler import pooled_verifier

        databases = self._stored_databases(stack)
        rotated = {k: a for k, a in databases.items() if a.generation or a.retiring}
        warnings: list[str] = []
        engine = Engine(self.spec.platform.docker.host)
        declared = set(database_keys(self.spec))
        for key, access in sorted(rotated.items()):
            tenant, deployment = key.split("/")
            dep = self.spec.tenants[tenant].deployments[deployment] if key in declared else None
            if not isinstance(dep, DatabaseDeployment):  # left the file: nothing uses it
                databases[key] = replace(access, retiring=())
                continue
            if dep.stopped:
                continue
            # The pooler's verifier (a salt derived from the password): the same one the
            # pooler's auth file holds, whichever of the two steps makes the role.
            current = pooled_verifier(key, access.current_password)
            sql = (
                ensure_login_sql(access.user, access.generation, current)
                if access.generation
                else ""
            )
            sql += "".join(retire_login_sql(access.user, g) for g in range(access.generation))
            try:
                target = locate(self.spec, engine, tenant, deployment)
                run_sql(self.spec.platform.docker.host, target.container, access.user,
                        target.dbname, sql)  # fmt: skip
            except HostingError as exc:
                if access.retiring:
                    warnings.append(
                        f"{key}: the previous password is still valid ({exc.message}); "
                        "the next apply retires it"
                    )
                continue
            databases[key] = replace(access, retiring=())
        if any(databases[k] != a for k, a in rotated.items()):
            self._store_databases(stack, databases)
        return warnings

    def load_edge(self, timeout_s: float = 30.0) -> None:
        """Push the routes through the admin socket (graceful: no request dropped)."""
        config = build_config(
            self.spec,
            verified_domains=verified_domains(self.spec, self.state_dir),
            ca_root_path=EDGE_CA_ROOT,
            suspended=suspended_tenants(self.state_dir),
            static_sources=static_sites(self.spec, self.base_dir),
            upstreams=swarm.swarm_upstreams(self.spec)
            if self.spec.platform.target == "swarm"
            else None,
            resolve=swarm.resolved(self.spec)
            if self.spec.platform.target == "swarm"
            else frozenset(),
        )
        sock = self.state_dir / "edge" / "admin" / "admin.sock"
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                push_config(f"unix://{sock}", config)
                return
            except ProviderError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)

    def _run(
        self, op: Callable[[Callable[[str], None]], Any], collector: Collector | None = None
    ) -> Any:
        """Run one engine operation; ^C cancels it the engine's way (in-flight steps finish,
        the state is saved, the lock released) before the command exits 130."""
        from pulumi import automation as auto

        from hosting.stacks.build import paused_gc

        interrupts = _Interrupts()
        outcome: dict[str, Any] = {}
        finished = threading.Event()

        def work() -> None:
            try:
                outcome["value"] = op(interrupts.on_output)
            except BaseException as exc:  # handed to the main thread below
                outcome["error"] = exc
            finally:
                finished.set()

        # Waited on with an Event, not Thread.join: on Python 3.11 a ^C that interrupts join()
        # marks the still-running thread as stopped (bpo-45274's fix), and we would leave early.
        interrupted = False
        with paused_gc():
            threading.Thread(target=work, name="engine", daemon=True).start()
            while not finished.is_set():
                try:
                    finished.wait(0.2)
                except KeyboardInterrupt:
                    interrupted = True
                    interrupts.forward()
        if interrupted:
            raise KeyboardInterrupt
        error = outcome.get("error")
        if error is None:
            return outcome.get("value")
        if isinstance(error, auto.ConcurrentUpdateError):
            lock_dir = self.backend.removeprefix("file://") + "/.pulumi/locks"
            raise ConcurrentUpdateError(
                "another apply, destroy or refresh holds the stack lock",
                f"wait for it to finish; if none is running, remove the stale lock in {lock_dir}",
            ) from None
        if isinstance(error, auto.CommandError):
            diagnostics = collector.diagnostics if collector else []
            beyond = _beyond_plan("\n".join([*diagnostics, str(error)]))
            if beyond:
                raise ProviderError(
                    f"{beyond}; the engine stopped there, and steps before it in the plan "
                    "may have been applied",
                    "the platform changed outside the plan (drift) since it was made: run "
                    "`hosting plan --out FILE` again and apply the new file",
                ) from None
            raise ProviderError(
                _resource_error(diagnostics) or _first_error(str(error)),
                "nothing else was changed by the failed step; fix it and apply again",
            ) from None
        raise error


class _Interrupts:
    """Exactly one SIGINT for the engine, whoever sent ours.

    A terminal's ^C reaches the whole process group, the engine included; `kill -INT` reaches
    only this process. The engine says when it heard one; ours is forwarded only if it did not,
    since a second SIGINT makes it stop at once, without saving its state.
    """

    def __init__(self) -> None:
        self.engine_heard = threading.Event()

    def on_output(self, line: str) -> None:
        if "received; cancelling" in line:
            self.engine_heard.set()

    def forward(self) -> None:
        if self.engine_heard.wait(1.5):
            return
        for pid in _engine_processes():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGINT)


def _engine_processes() -> list[int]:
    """The `pulumi` processes this process started (its plugins are their children)."""
    mine = os.getpid()
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        comm = text[text.index("(") + 1 : text.rindex(")")]
        ppid = int(text[text.rindex(")") + 2 :].split()[1])
        if ppid == mine and comm == "pulumi":
            found.append(int(stat.parent.name))
    return found


_FAILED_RESOURCE = re.compile(r"\* (\w+) urn:pulumi:\S*?::([^:\s]+): ")


def _resource_error(diagnostics: list[str]) -> str | None:
    """The failed resource and the provider's reason, from the engine's error diagnostics
    ("error: NAME: 1 error occurred: * REASON"): "edge: Unable to upload volume content: …"."""
    for diag in diagnostics:
        if not diag.startswith("error: "):
            continue
        bullets = [ln.strip()[2:] for ln in diag.splitlines() if ln.strip().startswith("* ")]
        if not bullets:
            continue
        failed = _FAILED_RESOURCE.search(diag)
        name = failed.group(2) if failed else diag[len("error: ") :].split(":", 1)[0]
        return f"{name}: {bullets[-1]}"
    return None


_BEYOND_PLAN = re.compile(
    r"resource urn:pulumi:\S*?::([^:\s]+) violates plan: ([^:=~]+)"
    r"|(\w+) is not allowed by the plan: ([^\n]+)"
)


def _beyond_plan(text: str) -> str | None:
    """The engine's refusal of a step a saved plan does not hold, in one short line (its own
    line lists every property, secret ones included as [secret])."""
    found = _BEYOND_PLAN.search(text)
    if found is None:
        return None
    if found.group(1):
        return (
            f"{found.group(1)}: the apply would go beyond the saved plan ({found.group(2).strip()})"
        )
    return f"the apply would go beyond the saved plan: {found.group(3)} {found.group(4).strip()}"


def _first_error(text: str) -> str:
    """The engine's first `error:` line (Pulumi masks secrets as [secret] in its output)."""
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("error:"):
            return "deployment engine: " + stripped[len("error:") :].strip()
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return "deployment engine failed: " + (lines[-1] if lines else "no output")


def passphrase_from_env() -> str | None:
    return os.environ.get("HOSTING_PASSPHRASE") or os.environ.get("PULUMI_CONFIG_PASSPHRASE")
