"""`hosting domains` and `hosting domains verify` as a user runs them (real subprocess)."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import run_hosting
from tests.domains.helpers import ChallTestSrv, spec_text, unique, write_spec


def test_verify_a_named_domain_exits_1_until_its_record_is_right(
    challtestsrv: ChallTestSrv, tmp_path: Path
) -> None:
    d = unique()
    write_spec(tmp_path, spec_text([d, "www." + d], nameservers=[challtestsrv.nameserver]))
    challtestsrv.add_a(d, "10.3.3.3")

    out = run_hosting("domains", "verify", d, cwd=tmp_path)
    assert out.returncode == 1, out.stderr
    assert f"{d}: failed — {d} points at 10.3.3.3, not at the platform's 127.0.0.1" in out.stdout
    assert "needs A → 127.0.0.1 (or CNAME → web-" in out.stdout
    assert out.stderr.strip() == f"error: {d} is not verified"

    challtestsrv.clear_a(d)
    challtestsrv.add_a(d, "127.0.0.1")
    out = run_hosting("domains", "verify", d, "--json", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    (entry,) = doc["domains"]
    assert entry["domain"] == d and entry["status"] == "verified" and entry["verified"]
    assert entry["reason"] == "A → 127.0.0.1"
    assert entry["checked_at"].endswith("Z")
    assert entry["newly_verified"] is True

    out = run_hosting("domains", "verify", d, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout == f"{d}: verified — A → 127.0.0.1\n"  # no `apply` hint the second time


def test_domains_lists_state_records_and_certificate(
    challtestsrv: ChallTestSrv, tmp_path: Path
) -> None:
    d = unique()
    write_spec(tmp_path, spec_text([d, "www." + d], nameservers=[challtestsrv.nameserver]))
    challtestsrv.add_a(d, "127.0.0.1")
    # Verifying everything without naming a domain reports and exits 0 even if some fail.
    out = run_hosting("domains", "verify", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert f"www.{d}: failed — www.{d} has no A record (no answer)" in out.stdout
    assert f"next: `hosting apply` routes {d}; Caddy then obtains the certificate" in out.stdout

    out = run_hosting("domains", "--json", "--edge", "127.0.0.1:9", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    docs = {e["domain"]: e for e in json.loads(out.stdout)["domains"]}
    assert docs[d]["status"] == "verified"
    assert docs[d]["records"] == [{"type": "A", "name": d, "value": "127.0.0.1"}]
    assert docs[d]["certificate"]["status"] == "pending"  # nothing listens on :9
    www = docs["www." + d]
    assert www["status"] == "failed" and www["redirect_to"] == d
    assert www["records"] == [{"type": "CNAME", "name": "www." + d, "value": d}]

    text = run_hosting("domains", "--edge", "127.0.0.1:9", cwd=tmp_path)
    assert text.returncode == 0
    assert f"    CNAME www.{d} → {d}" in text.stdout
    assert "| Domain" in text.stdout


def test_unknown_tenant_and_domain_are_errors(challtestsrv: ChallTestSrv, tmp_path: Path) -> None:
    write_spec(tmp_path, spec_text([unique()], nameservers=[challtestsrv.nameserver]))
    out = run_hosting("domains", "--tenant", "nobody", cwd=tmp_path)
    assert out.returncode == 1
    assert out.stderr.startswith("error: unknown tenant `nobody`")
    out = run_hosting("domains", "verify", "nope.example.test", cwd=tmp_path)
    assert out.returncode == 1
    assert "`nope.example.test` is not a custom domain in the file" in out.stderr
