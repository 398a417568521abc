"""PostgreSQL major-version upgrades, decided (pure): a database whose `version:` differs from
the version its data was recorded with (DatabaseAccess.version) is a data migration. It is
refused without --allow-major-upgrade, always refused going down, and refused when
platform.images.postgres names one image for every version. The migration itself is in
hosting.databases.upgrade_run; its data then lives on a volume of its own,
`<volume>_pg<version>`, the old one kept until `hosting backup prune`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from hosting.errors import HostingError, SpecError, SpecProblem, UsageError
from hosting.spec import names
from hosting.spec.models import VERSION_PLACEHOLDER, DatabaseDeployment, Spec
from hosting.stacks.settings import DatabaseAccess

FLAG = "--allow-major-upgrade"


class MajorUpgradeRefused(HostingError):
    """A version change that needs the flag (exit 1, nothing applied)."""


@dataclass(frozen=True)
class Upgrade:
    tenant: str
    deployment: str
    old: int  # the data's version, as recorded
    new: int  # the file's `version:`

    @property
    def ref(self) -> str:
        return f"{self.tenant}/{self.deployment}"

    def describe(self) -> str:
        return f"PostgreSQL {self.old} → {self.new}: dump, restore into a new volume, switch"


def pending(spec: Spec, databases: Mapping[str, DatabaseAccess]) -> list[Upgrade]:
    """Declared databases whose data is recorded at another version than the file says."""
    out = []
    for tid, tenant in spec.tenants.items():
        for did, dep in tenant.deployments.items():
            access = databases.get(f"{tid}/{did}")
            if not isinstance(dep, DatabaseDeployment) or access is None:
                continue
            if access.version is not None and access.version != dep.version:
                out.append(Upgrade(tid, did, access.version, dep.version))
    return out


def check(
    spec: Spec, upgrades: list[Upgrade], *, allowed: bool, spec_file: Path | None = None
) -> None:
    """Raise unless every upgrade may go ahead: a downgrade or an image without
    `{version}` is a problem in the file (SpecError at the `version:`), a swarm or a
    missing flag a refusal naming each database."""
    problems: list[tuple[Upgrade, str]] = []
    refusals: list[str] = []
    image = spec.platform.images.postgres
    for up in upgrades:
        if up.new < up.old:
            problems.append((up, f"PostgreSQL {up.new} is older than the data's {up.old}: a "
                             f"downgrade is not possible; set `version: {up.old}` (to go back, "
                             "restore a dump into a new database)"))  # fmt: skip
        elif VERSION_PLACEHOLDER not in image:
            problems.append((up, f"the data is PostgreSQL {up.old}, and platform.images.postgres "
                             f"`{image}` is one image for every version; write it with "
                             f"{VERSION_PLACEHOLDER} (e.g. postgres:{VERSION_PLACEHOLDER}-alpine)"
                             f", or set `version: {up.old}`"))  # fmt: skip
        elif spec.platform.target == "swarm":
            refusals.append(f"{up.ref}: PostgreSQL {up.old} → {up.new} is not possible on "
                            "platform.target swarm yet")  # fmt: skip
        elif not allowed:
            refusals.append(f"{up.ref}: `version: {up.new}` is a data migration from "
                            f"PostgreSQL {up.old} ({up.describe().split(': ', 1)[1]})")  # fmt: skip
    if problems:
        raise SpecError([_problem(spec_file, up, message) for up, message in problems])
    if refusals and spec.platform.target == "swarm":
        raise UsageError(
            "; ".join(refusals), "keep the version, or upgrade on platform.target docker"
        )
    if refusals:
        raise MajorUpgradeRefused(
            "; ".join(refusals) + f"; refused without {FLAG}, nothing was changed",
            f"review it with `hosting plan {FLAG}`, then run `hosting apply {FLAG}` "
            "(the old volume is kept until `hosting backup prune`)",
        )


def _problem(spec_file: Path | None, up: Upgrade, message: str) -> SpecProblem:
    path = ("tenants", up.tenant, "deployments", up.deployment, "version")
    line, col = 1, 1
    if spec_file is not None:
        from hosting.spec.yamlpos import parse

        try:
            _, positions, _ = parse(spec_file.read_bytes(), str(spec_file))
            line, col = positions.of_value(path)
        except OSError:
            pass
    return SpecProblem(str(spec_file or "hosting.yaml"), line, col, ".".join(path), message)


def upgraded(
    databases: Mapping[str, DatabaseAccess], upgrades: list[Upgrade]
) -> dict[str, DatabaseAccess]:
    """The access records as they are once each upgrade has switched."""
    out = dict(databases)
    for up in upgrades:
        out[up.ref] = replace(out[up.ref], version=up.new, upgraded=True)
    return out


def volume_name(platform: str, tenant: str, deployment: str, access: DatabaseAccess | None) -> str:
    """The data volume: the first one, or the last upgrade's own."""
    base = names.volume_name(platform, tenant, deployment)
    if access is not None and access.upgraded and access.version is not None:
        return f"{base}_pg{access.version}"
    return base


def volume_folder(deployment: str, access: DatabaseAccess | None) -> str:
    """Its directory in the tenant's bounded filesystem (hosting.provider.volume_quota); not
    a valid deployment name nor a replica's, so it never meets one."""
    if access is not None and access.upgraded and access.version is not None:
        return f"{deployment}.pg{access.version}"
    return deployment
