"""Files and folders the spec names are checked relative to the spec's folder: those that
exist are accepted (the broken-file corpus has those that do not: build_context_missing,
dockerfile_missing, acme_ca_root_missing, static_missing_folder)."""

from __future__ import annotations

from pathlib import Path

from hosting.spec import load

SPEC = """version: 1
platform:
  name: demo
  domain: apps.localhost
  public_ipv4: 127.0.0.1
  acme:
    ca: https://acme.internal.test/directory
    ca_root: certs/root.pem
tenants:
  acme:
    name: Acme Corp
    email: billing@acme.test
    plan: starter
    started: 2026-11-03
    deployments:
      shop:
        type: web
        port: 8080
        build: {context: app, dockerfile: web.Dockerfile}
      site:
        type: web
        static: public
"""


def test_a_ca_root_build_context_dockerfile_and_static_folder_that_exist_load(
    tmp_path: Path,
) -> None:
    (tmp_path / "certs").mkdir()
    (tmp_path / "certs" / "root.pem").write_text("-----BEGIN CERTIFICATE-----\n")
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "web.Dockerfile").write_text("FROM scratch\n")
    (tmp_path / "public").mkdir()
    (tmp_path / "hosting.yaml").write_text(SPEC)
    spec = load(tmp_path / "hosting.yaml")
    assert spec.platform.acme is not None
    assert spec.platform.acme.ca_root == "certs/root.pem"
    assert set(spec.tenants["acme"].deployments) == {"shop", "site"}
