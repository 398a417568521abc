"""`validate --json` speaks JSON whatever the file holds: editors and CI read the errors of
an invalid file from it (SPEC section 6: {"valid": false, "errors": [{file, line, column,
path, message, hint}]}, exit 1)."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import REPO, run_hosting

BROKEN = """\
version: 1
platform:
  name: demo
  domain: apps.localhost
  public_ipv4: 127.0.0.1
tenants:
  acme:
    name: Acme
    email: a@acme.test
    plan: starter
    started: 2026-11-03
    deployments:
      shop:
        type: web
        image: nginx
        port: 80
        replica: 2
"""


def test_an_invalid_file_gives_its_errors_as_json(tmp_path: Path) -> None:
    (tmp_path / "hosting.yaml").write_text(BROKEN)
    done = run_hosting("validate", "--json", cwd=tmp_path)
    assert done.returncode == 1
    report = json.loads(done.stdout)
    assert report["valid"] is False
    assert report["errors"] == [
        {
            "file": "hosting.yaml",
            "line": 17,
            "column": 9,
            "path": "tenants.acme.deployments.shop.replica",
            "message": "unknown key `replica`",
            "hint": "did you mean `replicas`?",
        }
    ]
    assert done.stderr == ""  # the JSON is the whole answer


def test_a_missing_file_is_an_error_in_json_too(tmp_path: Path) -> None:
    done = run_hosting("-f", "nothing.yaml", "validate", "--json", cwd=tmp_path)
    assert done.returncode == 1
    report = json.loads(done.stdout)
    assert report["valid"] is False and len(report["errors"]) == 1
    assert report["errors"][0]["file"] == "nothing.yaml" and report["errors"][0]["line"] == 1


def test_a_valid_file_still_says_valid() -> None:
    done = run_hosting("-f", str(REPO / "hosting.yaml"), "validate", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["valid"] is True


def test_a_broken_part_hides_no_problem_of_the_others_in_json(tmp_path: Path) -> None:
    """Issue 14: `replicas: -1` once hid the unknown plan, and a limit overrun pointed at the
    `deployments:` mapping rather than at the deployment that goes over."""
    text = (
        BROKEN.replace("plan: starter", "plan: platinum").replace("replica: 2", "replicas: -1")
        + "  globex:\n    name: Globex\n    email: a@globex.test\n    plan: free\n"
        "    started: 2026-11-03\n    deployments:\n"
        "      a: {type: database}\n      b: {type: database, version: 9}\n"
    )
    (tmp_path / "hosting.yaml").write_text(text)
    done = run_hosting("validate", "--json", cwd=tmp_path)
    assert done.returncode == 1
    found = [
        (e["line"], e["path"], e["message"], e["hint"]) for e in json.loads(done.stdout)["errors"]
    ]
    assert found == [
        (
            10,
            "tenants.acme.plan",
            "unknown plan `platinum` (plans: enterprise, free, pro, starter)",
            None,
        ),
        (
            17,
            "tenants.acme.deployments.shop.replicas",
            "input should be greater than or equal to 1 (got `-1`)",
            None,
        ),
        (
            25,
            "tenants.globex.deployments.b",
            "tenant globex: 2 databases, plan free allows 1, so `b` does not fit "
            "(remove one or move the tenant to a bigger plan)",
            None,
        ),
        (
            25,
            "tenants.globex.deployments.b.version",
            "input should be greater than or equal to 12 (got `9`)",
            None,
        ),
    ]
    assert done.stderr == ""
