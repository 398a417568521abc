"""Small words a new user reads first: counts agree with their nouns, and a next step works
as written (it carries the -f the user gave)."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import run_hosting

ONE_TENANT = """\
version: 1
platform: {name: demo, domain: apps.localhost, public_ipv4: 127.0.0.1}
tenants:
  acme:
    name: Acme
    email: a@acme.test
    plan: starter
    started: 2026-11-03
    deployments:
      main: {type: database}
"""


def test_validate_counts_one_tenant_and_one_deployment(tmp_path: Path) -> None:
    (tmp_path / "hosting.yaml").write_text(ONE_TENANT)
    done = run_hosting("validate", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("hosting.yaml: valid (1 tenant, 1 deployment)\n")


def test_init_with_another_file_suggests_validating_that_file(tmp_path: Path) -> None:
    done = run_hosting("-f", "other.yaml", "init", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "wrote other.yaml; next: hosting -f other.yaml validate\n"
    done = run_hosting("init", cwd=tmp_path)
    assert done.stdout == "wrote hosting.yaml; next: hosting validate\n"
