"""What operators do around apply on the real engine: add a tenant alone, run two applies at
once, press ^C mid-apply, and trust that no secret is written in the clear."""

from __future__ import annotations

import json
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

from hosting.spec import names
from tests.engine.conftest import PASSPHRASE, PLATFORM, Project, changes

pytestmark = pytest.mark.engine

TENANT = """
  {tenant}:
    name: {tenant}
    email: ops@{tenant}.test
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

SITE_TOKEN = "op-token-5c0ffee9d41b"


def write(project: Project, tenants: dict[str, str]) -> None:
    body = "".join(TENANT.format(tenant=t, greeting=g) for t, g in tenants.items())
    project.write(PLATFORM.format(platform=project.platform) + body)


def created(name: str) -> str:
    out = subprocess.run(
        ["docker", "inspect", "-f", "{{.Id}} {{.Created}}", name],
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.strip()


@pytest.fixture(scope="module")
def applied(project: Project) -> Project:
    project.env["SITE_TOKEN"] = SITE_TOKEN
    write(project, {"acme": "hello"})
    project.ok("apply", "--yes")
    return project


class CommandLines(threading.Thread):
    """Every process's command line seen while it runs: any local user can read them."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.seen: set[bytes] = set()
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.is_set():
            for path in Path("/proc").glob("[0-9]*/cmdline"):
                try:
                    self.seen.add(path.read_bytes())
                except OSError:
                    continue  # gone already

    def __enter__(self) -> CommandLines:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stopping.set()
        self.join()


def test_a_second_tenant_applied_alone_touches_nothing_of_the_first_nor_shows_its_password(
    applied: Project,
) -> None:
    acme = [names.container_name(applied.platform, "acme", d) for d in ("site", "main")]
    before = {n: created(n) for n in acme}
    write(applied, {"acme": "hello", "beta": "hi"})
    code, plan = applied.plan("--tenant", "beta")
    assert code == 2
    assert set(changes(plan)) == {"beta"}
    with CommandLines() as watched:  # beta's database password is generated and stored here
        applied.ok("apply", "--yes", "--tenant", "beta")
    assert {n: created(n) for n in acme} == before
    created(names.container_name(applied.platform, "beta", "site"))  # exists
    assert applied.plan()[0] == 0
    shown = applied.ok("credentials", "beta/main", "--show-secrets", "--json")
    password = json.loads(shown.stdout)["password"].encode()
    assert any(b"pulumi" in line for line in watched.seen)  # the watch saw the engine run
    leaks = [line.split(b"\0")[:4] for line in watched.seen if password in line]
    assert not leaks, "the password was on these command lines (first words shown)"


def test_two_applies_at_once_one_waits_or_is_refused_and_the_state_stays_whole(
    applied: Project,
) -> None:
    write(applied, {"acme": "concurrent", "beta": "hi"})
    first, second = applied.popen("apply", "--yes"), applied.popen("apply", "--yes")
    results = [(p.wait(timeout=600), *p.communicate()) for p in (first, second)]
    codes = sorted(code for code, _, _ in results)
    assert codes in ([0, 0], [0, 1]), results
    if codes == [0, 1]:
        [(_, _, err)] = [r for r in results if r[0] == 1]
        assert (
            "error: another apply is running with the state directory" in err
            or "error: another apply, destroy or refresh holds the stack lock" in err
        ), err
    assert applied.plan()[0] == 0  # the state is whole: nothing left to do


def _engine_child(parent: int, timeout_s: float = 120) -> int:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                text = stat.read_text()
            except OSError:
                continue
            ppid = int(text[text.rindex(")") + 2 :].split()[1])
            if ppid == parent and "(pulumi)" in text:
                try:  # a short-lived pulumi (the Automation API's own calls) may be gone
                    cmdline = (stat.parent / "cmdline").read_bytes().split(b"\0")
                except OSError:
                    continue
                if b"up" in cmdline:
                    return int(stat.parent.name)
        time.sleep(0.1)
    raise AssertionError("the engine never started")


def test_sigint_during_apply_exits_130_and_the_next_apply_completes(applied: Project) -> None:
    write(applied, {"acme": "interrupted", "beta": "hi"})
    proc = applied.popen("apply", "--yes")
    try:
        engine = _engine_child(proc.pid)
    except BaseException:
        proc.kill()  # not left holding the apply lock for the tests after this one
        proc.communicate(timeout=300)
        raise
    time.sleep(2)  # let it start changing containers
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    assert not Path(f"/proc/{engine}").exists()  # the engine stopped with us, no orphan
    applied.ok("apply", "--yes")  # no lock left behind, no state surgery
    assert applied.plan()[0] == 0


def test_secrets_appear_nowhere_in_plain_text(applied: Project) -> None:
    shown = applied.ok("credentials", "acme/main", "--show-secrets", "--json")
    password = json.loads(shown.stdout)["password"]
    assert len(password) >= 16
    outputs = [
        applied.ok("plan").stdout,
        applied.ok("apply", "--yes").stdout,
        applied.ok("status").stdout,
        applied.ok("credentials", "acme/main").stdout,
    ]
    secrets = (password, SITE_TOKEN, PASSPHRASE)
    for text in outputs:
        for secret in secrets:
            assert secret not in text
    for path in applied.state_dir.rglob("*"):
        if path.is_file() and path.suffix != ".duckdb":
            data = path.read_bytes()
            for secret in secrets:
                assert secret.encode() not in data, path
    labels = subprocess.run(
        ["docker", "inspect", "-f", "{{json .Config.Labels}}"]
        + [names.container_name(applied.platform, "acme", d) for d in ("site", "main")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    for secret in secrets:
        assert secret not in labels
