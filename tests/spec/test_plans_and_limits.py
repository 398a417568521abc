"""The plan catalog against the product document's table, and canDeploy."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hosting.errors import NotFoundError, UsageError
from hosting.spec import loads
from hosting.spec.limits import Decision, can_deploy, tenant_or_error, usage
from tests.conftest import run_hosting

MINIMAL = """version: 1
platform: {name: demo, domain: apps.localhost, public_ipv4: 127.0.0.1}
tenants:
  acme:
    name: Acme
    email: a@acme.test
    plan: free
    started: 2026-11-03
    deployments:
      a: {type: web, image: x, port: 80}
      b: {type: web, image: x, port: 80}
      c: {type: web, image: x, port: 80}
      db: {type: database}
"""

# Copied by hand from product/hosting-platform.md, "Default Plans".
PRODUCT_TABLE = [
    ["Free", "$0", "1 GB", "10 GB", "1", "3", "3"],
    ["Starter", "$9.99", "10 GB", "100 GB", "3", "10", "10"],
    ["Pro", "$29.99", "50 GB", "500 GB", "10", "50", "50"],
    ["Enterprise", "$99.99", "200 GB", "2000 GB", "999", "999", "999"],
]


def _write(tmp_path: Path, text: str = MINIMAL) -> Path:
    path = tmp_path / "hosting.yaml"
    path.write_text(text)
    return path


def test_plans_shows_the_product_table_exactly(tmp_path: Path) -> None:
    result = run_hosting("-f", str(_write(tmp_path)), "plans")
    assert result.returncode == 0, result.stderr
    first_table = result.stdout.split("\n\n")[0].splitlines()
    header = [c.strip() for c in first_table[0].strip("|").split("|")]
    assert header == ["Plan", "Price/mo", "Storage", "Bandwidth", "DBs", "APIs", "Sites"]
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in first_table[2:]]
    assert rows == PRODUCT_TABLE


def test_plans_json_has_every_number(tmp_path: Path) -> None:
    result = run_hosting("-f", str(_write(tmp_path)), "plans", "--json")
    plans = {p["name"]: p for p in json.loads(result.stdout)["plans"]}
    assert plans["pro"]["price_yearly"] == "299.90"
    assert plans["free"]["limits"] == {
        "cpus": 0.5,
        "memory_mb": 512,
        "disk_io_mbps": 50,
        "network_mbps": 10,
    }
    assert plans["enterprise"]["limits"] is None
    assert plans["starter"]["custom_domain"] is True
    assert plans["free"]["ssl_certificate"] is False


def test_can_deploy_answers_like_the_product(tmp_path: Path) -> None:
    file = str(_write(tmp_path))
    full = run_hosting("-f", file, "can-deploy", "acme", "web")
    assert full.returncode == 1
    assert full.stdout.strip() == "no: Limit reached: 3/3 websites"
    db = run_hosting("-f", file, "can-deploy", "acme", "database")
    assert db.stdout.strip() == "no: Limit reached: 1/1 databases"
    api = run_hosting("-f", file, "can-deploy", "acme", "api", "--json")
    assert api.returncode == 0
    assert json.loads(api.stdout)["can_deploy"] is True


def test_can_deploy_unknown_tenant(tmp_path: Path) -> None:
    result = run_hosting("-f", str(_write(tmp_path)), "can-deploy", "nobody", "web")
    assert result.returncode == 1
    assert "unknown tenant `nobody`" in result.stderr
    assert "acme" in result.stderr


def test_limit_overrun_is_named(tmp_path: Path) -> None:
    text = MINIMAL.replace(
        "      db: {type: database}\n", "      db: {type: database}\n      db2: {type: database}\n"
    )
    result = run_hosting("-f", str(_write(tmp_path, text)), "validate")
    assert result.returncode == 1
    assert "tenant acme: 2 databases, plan free allows 1" in result.stderr


def test_can_deploy_in_process_at_one_under_and_over_the_limit() -> None:
    """Free: 3 websites, 3 APIs, 1 database. MINIMAL has 3 webs (at), 0 APIs, 1 database (at);
    a file one over is refused when loaded (see test_limit_overrun_is_named)."""
    spec = loads(MINIMAL, base_dir=Path("."))
    assert {
        k: (u.used, u.allowed, u.full) for k, u in usage(spec, spec.tenants["acme"]).items()
    } == {
        "web": (3, 3, True),
        "api": (0, 3, False),
        "database": (1, 1, True),
    }
    assert can_deploy(spec, "acme", "web") == Decision(
        "acme", "web", False, "Limit reached: 3/3 websites", 3, 3
    )
    assert can_deploy(spec, "acme", "database") == Decision(
        "acme", "database", False, "Limit reached: 1/1 databases", 1, 1
    )
    assert can_deploy(spec, "acme", "api") == Decision("acme", "api", True, None, 0, 3)
    two = loads(
        MINIMAL.replace("      c: {type: web, image: x, port: 80}\n", ""), base_dir=Path(".")
    )
    assert can_deploy(two, "acme", "web") == Decision("acme", "web", True, None, 2, 3)


def test_can_deploy_in_process_names_what_is_unknown() -> None:
    spec = loads(MINIMAL, base_dir=Path("."))
    with pytest.raises(UsageError) as kind:
        can_deploy(spec, "acme", "worker")
    assert kind.value.lines() == [
        "error: unknown deployment type `worker` (hint: use web, api or database)"
    ]
    with pytest.raises(NotFoundError) as tenant:
        can_deploy(spec, "globex", "web")
    assert tenant.value.lines() == [
        "error: unknown tenant `globex` (hint: tenants in the file: acme)"
    ]
    empty = loads(MINIMAL[: MINIMAL.index("tenants:")] + "tenants: {}\n", base_dir=Path("."))
    with pytest.raises(NotFoundError) as none:
        tenant_or_error(empty, "acme")
    assert none.value.hint == "tenants in the file: none"


# Found by scripts/mutation: the hint's list of two tenants, and each usage's own kind (apply's
# refusal names the kind from it: "Limit exceeded: 2/1 databases").


def test_an_unknown_tenant_lists_every_tenant_of_the_file() -> None:
    two = MINIMAL + "  globex:\n    name: Globex\n    email: a@globex.test\n" \
        "    plan: free\n    started: 2026-11-03\n"  # fmt: skip
    with pytest.raises(NotFoundError) as info:
        tenant_or_error(loads(two, base_dir=Path(".")), "initech")
    assert info.value.hint == "tenants in the file: acme, globex"


def test_each_usage_names_its_own_kind() -> None:
    spec = loads(MINIMAL, base_dir=Path("."))
    assert {k: u.kind for k, u in usage(spec, spec.tenants["acme"]).items()} == {
        "web": "web",
        "api": "api",
        "database": "database",
    }
