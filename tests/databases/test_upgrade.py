"""PostgreSQL major upgrades decided without an engine: the image placeholder, the recorded
data version, refusals (flag, downgrade, one image for every version), the program after the
switch and the plan's data-migration line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import hosting
from hosting.cli.plan_output import plan_json, plan_text
from hosting.databases.upgrade import (
    MajorUpgradeRefused,
    Upgrade,
    check,
    pending,
    upgraded,
    volume_folder,
    volume_name,
)
from hosting.errors import SpecError
from hosting.provider.changes import report
from hosting.provider.events import Step, place_of
from hosting.spec.loader import loads
from hosting.spec.models import Spec
from hosting.stacks.desired import desired_containers
from hosting.stacks.settings import DatabaseAccess, ProgramSettings, ensure_databases

REPO = Path(__file__).resolve().parents[2]

SPEC = """\
version: 1
platform:
  name: p
  domain: apps.test
  public_ipv4: 127.0.0.1
{images}tenants:
  acme:
    name: Acme
    email: a@acme.test
    plan: starter
    started: 2026-01-01
    deployments:
      main:
        type: database
        version: {version}
"""


def spec(version: int, images: str = "") -> Spec:
    return loads(SPEC.format(version=version, images=images))


def recorded(version: int | None, upgraded: bool = False) -> dict[str, DatabaseAccess]:
    return {
        "acme/main": DatabaseAccess("acme_main", "pw", 15432, version=version, upgraded=upgraded)
    }


def test_the_default_image_is_per_version() -> None:
    images = spec(15).platform.images
    assert images.postgres == "postgres:{version}-alpine"
    assert (images.postgres_for(15), images.postgres_for(17)) == (
        "postgres:15-alpine",
        "postgres:17-alpine",
    )
    plain = spec(15, '  images: {postgres: "registry.test/pg:15"}\n').platform.images
    assert plain.postgres_for(17) == "registry.test/pg:15"  # one image for every version


def test_a_placeholder_other_than_version_is_an_error_at_its_line() -> None:
    with pytest.raises(SpecError) as err:
        spec(15, '  images: {postgres: "postgres:{major}-alpine"}\n')
    [problem] = err.value.errors
    assert (problem.line, problem.path) == (6, "platform.images.postgres")
    assert "postgres:{major}-alpine" in problem.message and "{version}" in problem.message


def test_an_unchanged_version_is_no_upgrade_and_an_old_config_takes_the_files() -> None:
    assert pending(spec(17), recorded(17)) == []
    # recorded before versions were: the file's version is the data's, nothing to migrate
    filled = ensure_databases(spec(17), recorded(None))
    assert filled["acme/main"].version == 17
    assert pending(spec(17), filled) == []
    fresh = ensure_databases(spec(16), {})
    assert fresh["acme/main"].version == 16


def test_a_raised_version_is_refused_without_the_flag() -> None:
    s = spec(17)
    ups = pending(s, recorded(15))
    assert ups == [Upgrade("acme", "main", 15, 17)]
    with pytest.raises(MajorUpgradeRefused) as err:
        check(s, ups, allowed=False)
    assert "acme/main" in err.value.message and "PostgreSQL 15" in err.value.message
    assert "version: 17" in err.value.message and "nothing was changed" in err.value.message
    assert "--allow-major-upgrade" in (err.value.hint or "")
    assert err.value.exit_code == 1
    check(s, ups, allowed=True)  # allowed: no error


def test_a_downgrade_is_refused_even_with_the_flag_at_the_version_line(tmp_path: Path) -> None:
    file = tmp_path / "hosting.yaml"
    file.write_text(SPEC.format(version=15, images=""))
    s = hosting.load(file)
    with pytest.raises(SpecError) as err:
        check(s, pending(s, recorded(17)), allowed=True, spec_file=file)
    [problem] = err.value.errors
    assert (problem.file, problem.line, problem.column) == (str(file), 15, 18)
    assert problem.path == "tenants.acme.deployments.main.version"
    assert "older than the data's 17" in problem.message and "version: 17" in problem.message


def test_one_image_for_every_version_refuses_a_change_even_with_the_flag(
    tmp_path: Path,
) -> None:
    file = tmp_path / "hosting.yaml"
    file.write_text(SPEC.format(version=17, images='  images: {postgres: "registry.test/pg:15"}\n'))
    s = hosting.load(file)
    with pytest.raises(SpecError) as err:
        check(s, pending(s, recorded(15)), allowed=True, spec_file=file)
    [problem] = err.value.errors
    assert (problem.line, problem.column) == (16, 18)
    assert "registry.test/pg:15" in problem.message and "{version}" in problem.message


def test_the_recorded_version_survives_the_stack_config() -> None:
    access = DatabaseAccess("u", "p", 15433, version=17, upgraded=True)
    raw = json.loads(json.dumps(access.to_json()))
    assert raw["version"] == 17 and raw["upgraded"] is True
    assert DatabaseAccess.from_json(raw) == access
    old = {"user": "u", "password": "p", "port": 15433}  # a config from before
    assert DatabaseAccess.from_json(old) == DatabaseAccess("u", "p", 15433)
    assert "upgraded" not in DatabaseAccess("u", "p", 1, version=15).to_json()


def test_after_the_switch_the_program_runs_the_new_image_on_the_new_volume() -> None:
    s = spec(17)
    after = upgraded(recorded(15), pending(s, recorded(15)))
    assert after["acme/main"].version == 17 and after["acme/main"].upgraded
    assert volume_name("p", "acme", "main", after["acme/main"]) == "p_acme_main_data_pg17"
    assert volume_folder("main", after["acme/main"]) == "main.pg17"
    assert volume_name("p", "acme", "main", recorded(15)["acme/main"]) == "p_acme_main_data"
    db = desired_containers(s, ProgramSettings(databases=after)).databases[("acme", "main")]
    assert db is not None
    assert db.image == "postgres:17-alpine"
    [data] = [m for m in db.mounts if m.target == "/var/lib/postgresql/data"]
    assert data.source == "p_acme_main_data_pg17"
    before = desired_containers(spec(15), ProgramSettings(databases=recorded(15)))
    first = before.databases[("acme", "main")]
    assert first is not None and first.image == "postgres:15-alpine"
    assert first.mounts[0].source == "p_acme_main_data"


def _report() -> object:
    name = "acme_main_0"
    tenant, dep = place_of(name)
    steps = [Step(f"urn::{name}", name, "container", "replace", tenant, dep)]
    return report(spec(17), steps, {"acme": {"plan": "starter", "billing_cycle": "monthly"}}, None)


def test_the_plan_shows_the_data_migration_in_text_and_json() -> None:
    import jsonschema

    doc = plan_json(_report(), [Upgrade("acme", "main", 15, 17)])
    [acme] = doc["tenants"]
    assert acme["migrations"] == [
        {
            "deployment": "main",
            "from_version": 15,
            "to_version": 17,
            "text": "data migration PostgreSQL 15 → 17: dump, restore into a new volume, "
            "switch (old volume kept until backup prune)",
        }
    ]
    text = plan_text(doc, markdown=False).splitlines()
    assert (
        "  main: data migration PostgreSQL 15 → 17: dump, restore into a new volume, switch "
        "(old volume kept until backup prune)" in text
    )
    schema = json.loads((REPO / "hosting" / "cli" / "plan.schema.json").read_text())
    jsonschema.validate(json.loads(json.dumps(doc)), schema)
    assert "migrations" not in plan_json(_report())["tenants"][0]  # none: no field
