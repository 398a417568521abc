"""`pooling:` in hosting.yaml: defaults, the plan rule, typos, and the references it changes."""

from __future__ import annotations

from pathlib import Path

import pytest

from hosting.errors import SpecError
from hosting.spec import loads
from hosting.spec.models import DatabaseDeployment, Pooling
from hosting.stacks.refs import exports, resolve_env
from tests.conftest import run_hosting
from tests.stacks.conftest import fixed_settings

FILE = """version: 1
platform: {{name: demo, domain: apps.localhost, public_ipv4: 127.0.0.1}}
tenants:
  acme:
    name: Acme
    email: a@acme.test
    plan: {plan}
    started: 2026-11-03
    deployments:
      main:
        type: database
        pooling: {pooling}
      app:
        type: api
        image: x:1
        port: 80
        env:
          DATABASE_URL: ${{main.url}}
          MIGRATE_URL: ${{main.direct_url}}
"""


def _pooling(text: str, plan: str = "starter") -> DatabaseDeployment:
    dep = loads(FILE.format(plan=plan, pooling=text)).tenants["acme"].deployments["main"]
    assert isinstance(dep, DatabaseDeployment)
    return dep


def test_true_takes_the_documented_defaults() -> None:
    assert _pooling("true").pooling == Pooling(
        mode="transaction", max_client_conn=500, default_pool_size=20
    )
    assert _pooling("false").pooling is None
    given = _pooling("{mode: session, default_pool_size: 5}").pooling
    assert given == Pooling(mode="session", max_client_conn=500, default_pool_size=5)


def test_without_the_key_there_is_no_pooler() -> None:
    text = FILE.format(plan="starter", pooling="true").replace("        pooling: true\n", "")
    dep = loads(text).tenants["acme"].deployments["main"]
    assert isinstance(dep, DatabaseDeployment) and dep.pooling is None


@pytest.mark.parametrize("plan", ["starter", "pro"])
def test_paid_plans_may_pool(plan: str) -> None:
    assert _pooling("true", plan).pooling is not None


def test_free_plan_is_refused_with_its_name_line_and_field(tmp_path: Path) -> None:
    path = tmp_path / "hosting.yaml"
    path.write_text(FILE.format(plan="free", pooling="true"))
    result = run_hosting("-f", str(path), "validate")
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"{path}:12:9: error: tenants.acme.deployments.main.pooling: plan free has no "
        "connection pooling (remove `pooling` or move the tenant to a paid plan)"
    ]
    assert "Traceback" not in result.stderr


def test_a_misspelt_key_is_named_with_its_line_and_a_suggestion(tmp_path: Path) -> None:
    path = tmp_path / "hosting.yaml"
    path.write_text(FILE.format(plan="starter", pooling="{mode: session, max_client_con: 50}"))
    result = run_hosting("-f", str(path), "validate")
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"{path}:12:34: error: tenants.acme.deployments.main.pooling.max_client_con: "
        "unknown key `max_client_con`; did you mean `max_client_conn`?"
    ]


@pytest.mark.parametrize(
    ("pooling", "field", "message"),
    [
        ("{mode: sessions}", "pooling.mode", "`sessions` must be 'transaction', 'session' or"),
        ("{default_pool_size: 0}", "pooling.default_pool_size", "greater than or equal to 1"),
        ("{max_client_conn: 20000}", "pooling.max_client_conn", "less than or equal to 8000"),
        ("yes please", "pooling", "`yes please` is not a pooling setting: give `true` or"),
    ],
)
def test_bad_values_are_errors_on_their_field(pooling: str, field: str, message: str) -> None:
    with pytest.raises(SpecError) as caught:
        _pooling(pooling)
    [error] = caught.value.errors
    assert error.path == f"tenants.acme.deployments.main.{field}"
    assert message in error.message
    assert error.line == 12


def test_url_points_at_the_pooler_and_direct_url_at_the_server() -> None:
    spec = loads(FILE.format(plan="starter", pooling="true"))
    settings = fixed_settings(spec)
    table = exports(spec, settings, "acme")["main"]
    pw = "pw-acme-main-Zq9"  # fixed_settings' password
    assert table["url"].value == f"postgresql://u_acme_main:{pw}@demo_acme_main_pooler:6432/db_main"
    assert (
        table["direct_url"].value == f"postgresql://u_acme_main:{pw}@demo_acme_main_0:5432/db_main"
    )
    assert table["url"].secret and table["direct_url"].secret
    # host and port still name the server itself
    assert (table["host"].value, table["port"].value) == ("demo_acme_main_0", "5432")
    env, secret = resolve_env(
        {"DATABASE_URL": "${main.url}", "MIGRATE_URL": "${main.direct_url}"},
        exports(spec, settings, "acme"),
    )
    assert env["MIGRATE_URL"].endswith("@demo_acme_main_0:5432/db_main")
    assert secret == {"DATABASE_URL", "MIGRATE_URL"}


def test_without_pooling_url_and_direct_url_are_the_server() -> None:
    spec = loads(FILE.format(plan="free", pooling="false"))
    table = exports(spec, fixed_settings(spec), "acme")["main"]
    assert table["url"].value == table["direct_url"].value
    assert table["url"].value.endswith("@demo_acme_main_0:5432/db_main")


def test_direct_url_is_a_database_export_only() -> None:
    text = FILE.format(plan="starter", pooling="true").replace(
        "${main.direct_url}", "${app.direct_url}"
    )
    with pytest.raises(SpecError) as caught:
        loads(text)
    [error] = caught.value.errors
    assert error.path == "tenants.acme.deployments.app.env.MIGRATE_URL"
    assert error.message == "`${app.direct_url}`: a api exports url"
