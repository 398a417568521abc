"""Generated names: stable across processes, DNS-safe, unique, unambiguous."""

from __future__ import annotations

import re
import subprocess
import sys

from hosting.spec import names

LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")


def test_subdomain_is_stable_across_processes() -> None:
    code = "from hosting.spec import names; print(names.hostname('acme','shop','web','apps.test'))"
    runs = {
        subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            env={"PYTHONHASHSEED": seed},
        ).stdout
        for seed in ("1", "2", "3")
    }
    assert len(runs) == 1
    host = runs.pop().strip()
    assert re.fullmatch(r"web-[a-z2-7]{6}\.apps\.test", host)


def test_subdomains_are_dns_labels_and_unique() -> None:
    seen = set()
    for t in range(200):
        for d in range(50):
            label = names.subdomain_label(f"tenant-{t}", f"dep-{d}", "api")
            assert LABEL.match(label)
            seen.add(label)
    assert len(seen) == 200 * 50


def test_type_prefix_and_tenant_matter() -> None:
    assert names.subdomain_label("acme", "shop", "web").startswith("web-")
    assert names.subdomain_label("acme", "main", "database").startswith("db-")
    assert names.subdomain_label("acme", "shop", "web") != names.subdomain_label(
        "acme2", "shop", "web"
    )


def test_docker_names_cannot_be_ambiguous() -> None:
    # tenant "a-b" + deployment "c" must differ from tenant "a" + deployment "b-c".
    assert names.container_name("demo", "a-b", "c") != names.container_name("demo", "a", "b-c")
    assert names.container_name("demo", "acme", "shop", 1) == "demo_acme_shop_1"
    assert names.network_name("demo", "acme") == "demo_acme"
    assert names.volume_name("demo", "acme", "main") == "demo_acme_main_data"
    assert names.database_name("orders-eu") == "db_orders_eu"
