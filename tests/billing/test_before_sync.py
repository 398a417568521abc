"""Before `subscription sync` and before a tenant's start, billing answers without
inventing anything: no random subscription id, and the real reason there is no usage."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tests.conftest import run_hosting

SPEC = """\
version: 1
platform: {{name: demo, domain: apps.localhost, public_ipv4: 127.0.0.1}}
tenants:
  acme:
    name: Acme
    email: a@acme.test
    plan: starter
    started: 2026-09-03
    deployments: {{}}
  later:
    name: Later
    email: l@later.test
    plan: starter
    started: {later}
    deployments: {{}}
"""


def _folder(tmp_path: Path) -> tuple[Path, str]:
    later = (datetime.now(UTC).date() + timedelta(days=20)).isoformat()
    (tmp_path / "hosting.yaml").write_text(SPEC.format(later=later))
    return tmp_path, later


def test_subscription_before_sync_shows_no_made_up_id(tmp_path: Path) -> None:
    folder, _ = _folder(tmp_path)
    first = run_hosting("subscription", "acme", "--json", cwd=folder)
    second = run_hosting("subscription", "acme", "--json", cwd=folder)
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout)["subscription_id"] is None
    assert first.stdout == second.stdout
    text = run_hosting("subscription", "acme", cwd=folder)
    assert "not recorded yet" in text.stdout and "hosting subscription sync" in text.stdout

    assert run_hosting("subscription", "sync", cwd=folder).returncode == 0
    synced = json.loads(run_hosting("subscription", "acme", "--json", cwd=folder).stdout)
    assert synced["subscription_id"]  # recorded now, and stable from here on
    again = json.loads(run_hosting("subscription", "acme", "--json", cwd=folder).stdout)
    assert again["subscription_id"] == synced["subscription_id"]


def test_usage_of_a_tenant_starting_later_says_when(tmp_path: Path) -> None:
    folder, later = _folder(tmp_path)
    for _ in range(2):  # before and after sync: the answer does not depend on it
        done = run_hosting("usage", "later", cwd=folder)
        assert done.returncode == 1 and done.stdout == ""
        assert f"its first billing period starts on {later}" in done.stderr
        assert "subscription sync" not in done.stderr and done.stderr.count("\n") == 1
        assert run_hosting("subscription", "sync", cwd=folder).returncode == 0
