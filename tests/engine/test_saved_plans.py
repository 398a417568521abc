"""Saved plans on the real engine: `plan --out FILE` then `apply FILE` applies exactly FILE,
and refuses, changing nothing, when the file, a secret or the stack moved on."""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import subprocess
from pathlib import Path

import pytest

from hosting.engine import locate
from hosting.spec import names
from tests.engine.conftest import PLATFORM, Project

pytestmark = pytest.mark.engine

TENANT = """
  acme:
    name: Acme
    email: ops@acme.test
    plan: starter
    started: 2026-01-01
    deployments:
      site:
        type: web
        image: hosting-test/busybox:latest
        port: 8080
        env: {{GREETING: {greeting}}}
        secrets: {{SITE_TOKEN: {{env: SITE_TOKEN}}}}
        health: {{path: /healthz, interval_s: 1}}
      main: {{type: database}}
"""
TOKEN = "saved-plan-token-7e11a"


def write(project: Project, greeting: str) -> None:
    project.write(PLATFORM.format(platform=project.platform) + TENANT.format(greeting=greeting))


def inspect(project: Project, deployment: str) -> tuple[str, list[str]]:
    """(container id, env) of a deployment's first replica."""
    name = names.container_name(project.platform, "acme", deployment, 0)
    out = subprocess.run(
        ["docker", "inspect", "-f", "{{.Id}} {{json .Config.Env}}", name],
        capture_output=True,
        text=True,
        check=True,
    )
    cid, env = out.stdout.split(" ", 1)
    return cid, json.loads(env)


def save(project: Project, name: str) -> dict[str, object]:
    out = project.run("plan", "--out", name, "--format", "json", "--detailed-exitcode")
    assert out.returncode == 2, out.stderr
    planned: dict[str, object] = json.loads(out.stdout)
    return planned


@pytest.fixture(scope="module")
def saved(project: Project) -> Project:
    project.env["SITE_TOKEN"] = TOKEN
    return project


def test_plan_out_then_apply_applies_exactly_the_plan(saved: Project) -> None:
    write(saved, "one")
    planned = save(saved, "p1.bin")
    assert json.loads(saved.ok("show", "p1.bin", "--format", "json").stdout) == planned
    assert TOKEN not in (saved.folder / "p1.bin").read_text()

    out = saved.ok("apply", "p1.bin")
    summary = planned["summary"]
    assert isinstance(summary, dict)
    assert f"Applied: {sum(summary.values())} resources changed." in out.stdout
    assert "GREETING=one" in inspect(saved, "site")[1]
    assert saved.plan()[0] == 0  # the database included: its password was fixed at plan time
    # The audit log records the apply of that file, by its hash, as it ended.
    [entry] = [
        e
        for e in json.loads(saved.ok("audit", "--json").stdout)["entries"]
        if e["what"]["command"] == "apply"
    ]
    assert entry["result"]["status"] == "ok"
    digest = hashlib.sha256((saved.folder / "p1.bin").read_bytes()).hexdigest()
    assert entry["what"]["args"]["plan_file"]["sha256"] == digest
    assert TOKEN not in json.dumps(entry)
    assert saved.ok("audit", "verify").returncode == 0


def test_an_edit_after_the_plan_is_refused_and_nothing_changes(saved: Project) -> None:
    before = inspect(saved, "site")
    write(saved, "two")
    save(saved, "p2.bin")
    write(saved, "three")
    out = saved.run("apply", "p2.bin")
    assert out.returncode == 1
    assert "error: the plan p2.bin is stale: hosting.yaml changed since it was made" in out.stderr
    assert "Traceback" not in out.stderr
    assert inspect(saved, "site") == before


def test_a_changed_secret_is_refused_and_named_never_shown(saved: Project) -> None:
    before = inspect(saved, "site")
    write(saved, "two")
    save(saved, "p3.bin")
    out = saved.run("apply", "p3.bin", SITE_TOKEN="a-different-token-0042")
    assert out.returncode == 1
    assert "secrets changed since it was made: acme/site/SITE_TOKEN" in out.stderr
    assert TOKEN not in out.stderr and "a-different-token-0042" not in out.stderr
    assert inspect(saved, "site") == before


def test_two_applies_of_one_plan_apply_it_once_and_the_state_stays_whole(saved: Project) -> None:
    # p3.bin (GREETING=two) is still current: the refusals above changed nothing.
    first, second = saved.popen("apply", "p3.bin"), saved.popen("apply", "p3.bin")
    results = [(p.wait(timeout=600), *p.communicate()) for p in (first, second)]
    assert sorted(code for code, _, _ in results) == [0, 1], results
    [(_, _, err)] = [r for r in results if r[0] == 1]
    # Refused by the apply lock while the other runs, or as stale once it has finished.
    assert (
        "another apply is running with the state directory" in err
        or "the plan p3.bin is stale: the stack was updated since it was made" in err
    ), err
    assert "GREETING=two" in inspect(saved, "site")[1]
    assert saved.plan()[0] == 0


def test_drift_after_the_plan_stops_the_apply_at_the_plan(saved: Project) -> None:
    write(saved, "four")
    save(saved, "p4.bin")
    site = names.container_name(saved.platform, "acme", "site", 0)
    subprocess.run(["docker", "rm", "-f", site], capture_output=True, check=True)
    out = saved.run("apply", "p4.bin")
    assert out.returncode == 1
    assert "acme_site_0: the apply would go beyond the saved plan" in out.stderr
    assert TOKEN not in out.stderr
    saved.ok("apply", "--yes")  # a fresh apply heals the drift
    assert "GREETING=four" in inspect(saved, "site")[1]
    assert saved.plan()[0] == 0


def tree_digest(root: Path) -> dict[str, str]:
    """Every file's sha256, but the databases' own live files: PostgreSQL writes there, not
    hosting (the tenants' filesystems are mounted under volumes/, and the WAL it archives
    lands in backups/TENANT/DATABASE/wal/ whenever a segment fills)."""

    def postgres_writes(parts: tuple[str, ...]) -> bool:
        return parts[:1] == ("volumes",) or (parts[:1] == ("backups",) and parts[3:4] == ("wal",))

    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "/"
        for p in sorted(root.rglob("*"))
        if not p.is_symlink() and not postgres_writes(p.relative_to(root).parts)
    }


def run_read_only(project: Project, *args: str) -> subprocess.CompletedProcess[str]:
    """`hosting ARGS` with the state directory and the engine mounted read-only, in a mount
    namespace of its own: what a preview job with a read-only state credential can do."""
    engine = locate.pulumi_home(project.state_dir).parent
    mounts = " && ".join(f"mount --bind -o ro {d} {d}" for d in (project.state_dir, engine))
    script = f"{mounts} && exec python3 -m hosting {shlex.join(args)}"
    return subprocess.run(
        ["unshare", "--mount", "sh", "-c", script],
        cwd=project.folder,
        env={**os.environ, **project.env},
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.mark.root
def test_a_plan_needs_only_read_access_to_the_state(saved: Project) -> None:
    """A new database included: its password is the one apply will use, though the plan
    could store nothing."""
    spec = PLATFORM.format(platform=saved.platform) + TENANT.format(greeting="five")
    saved.write(spec + "      extra: {type: database}\n")
    engine = locate.pulumi_home(saved.state_dir).parent
    before = tree_digest(saved.state_dir), tree_digest(engine)
    # Control: the mount is read-only for real.
    probe = subprocess.run(
        ["unshare", "--mount", "sh", "-c",
         f"mount --bind -o ro {saved.state_dir} {saved.state_dir} && "
         f"touch {saved.state_dir}/probe"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert probe.returncode != 0 and "Read-only file system" in probe.stderr, probe

    out = run_read_only(saved, "plan", "--out", "p5.bin", "--detailed-exitcode")
    assert out.returncode == 2, out.stderr
    assert "extra" in out.stdout
    assert (tree_digest(saved.state_dir), tree_digest(engine)) == before
    assert run_read_only(saved, "diff").returncode == 0

    saved.ok("apply", "p5.bin")
    assert "GREETING=five" in inspect(saved, "site")[1]
    db = names.container_name(saved.platform, "acme", "extra", 0)
    running = subprocess.run(["docker", "inspect", "-f", "{{.State.Running}}", db],
                             capture_output=True, text=True)  # fmt: skip
    assert running.stdout.strip() == "true", running.stderr
    assert saved.plan()[0] == 0


def test_change_passphrase_re_encrypts_and_a_wrong_one_changes_nothing(saved: Project) -> None:
    old = saved.env["HOSTING_PASSPHRASE"]
    new = "a-new-passphrase-5c2e91"
    saved.ok("plan", "--out", "p6.bin")  # made under the old passphrase
    stack_files = [saved.state_dir / "pulumi", saved.state_dir / "work"]
    before = [tree_digest(d) for d in stack_files]

    wrong = saved.run(
        "secrets", "change-passphrase", HOSTING_PASSPHRASE="not-it", HOSTING_NEW_PASSPHRASE=new
    )
    assert wrong.returncode == 1
    assert "the current passphrase (HOSTING_PASSPHRASE) does not decrypt" in wrong.stderr
    assert [tree_digest(d) for d in stack_files] == before

    out = saved.run("secrets", "change-passphrase", HOSTING_NEW_PASSPHRASE=new)
    assert out.returncode == 0, out.stderr
    for text in (out.stdout, out.stderr):
        assert new not in text and old not in text
    for path in saved.state_dir.rglob("*"):
        if "volumes" in path.relative_to(saved.state_dir).parts[:1]:
            continue  # the tenants' database filesystems: their data, not our records
        if path.is_file() and not path.is_symlink():
            data = path.read_bytes()
            assert new.encode() not in data and old.encode() not in data, path

    refused = saved.run("plan")
    assert refused.returncode == 1
    assert "Traceback" not in refused.stderr
    saved.env["HOSTING_PASSPHRASE"] = new
    # Same secrets decrypted under the new one: nothing to change, no container replaced.
    assert saved.plan()[0] == 0
    stale = saved.run("apply", "p6.bin")
    assert stale.returncode == 1 and "is stale" in stale.stderr


def test_no_secret_value_is_written_anywhere_but_the_encrypted_state(saved: Project) -> None:
    """Issue 13's grep: every secret value (an env secret, each database password, the
    passphrase) across the state directory (Pulumi state and config, the store, logs, the
    audit log, saved plans, reports) and the output of the commands people run."""
    values = [TOKEN, saved.env["HOSTING_PASSPHRASE"]]
    for db in ("main", "extra"):
        shown = json.loads(saved.ok("credentials", f"acme/{db}", "--show-secrets", "--json").stdout)
        values.append(shown["password"])
    runs = [
        saved.ok(*args)
        for args in (
            ("plan", "--format", "json"),
            ("plan", "--out", "p7.bin", "--format", "markdown"),
            ("show", "p7.bin"),
            ("apply", "--yes"),
            ("status", "--json"),
            ("credentials", "acme/main", "--json"),
            ("diff", "--json"),
            ("audit", "--json"),
            ("report", "platform", "-o", "platform.html"),
        )
    ]
    outputs = [out.stdout + out.stderr for out in runs]
    # volumes/ holds the tenants' database filesystems (a sparse image of the plan's size,
    # and PostgreSQL's own files): the tenants' data, not the platform's records.
    files = [
        p
        for p in (*saved.state_dir.rglob("*"), *saved.folder.glob("*"))
        if p.is_file() and "volumes" not in p.relative_to(saved.folder).parts[:2]
    ]
    assert any(p.suffix == ".duckdb" for p in files) and any(p.name == "p7.bin" for p in files)
    for value in values:
        assert len(value) >= 16
        for text in outputs:
            assert value not in text
        for path in files:
            if not path.is_symlink():
                assert value.encode() not in path.read_bytes(), path
