"""Saved plans' staleness rules and file format, without an engine (tests/engine proves the
apply of a saved plan for real)."""

from __future__ import annotations

import stat
from dataclasses import replace
from pathlib import Path

import pytest

from hosting.errors import StalePlanError, UsageError
from hosting.provider import saved_plan as sp

BASE = sp.Fingerprint(
    spec_file="hosting.yaml",
    spec_sha256="a" * 64,
    stack_update="update #0 2026-11-29T14:59:13Z → 14:59:16Z succeeded",
    tool_version="0.1.0",
    engine="pulumi 3.274.1, docker plugin 5.1.0",
    secrets={"acme/shop/SESSION_KEY": sp.secret_digest("pass", "acme/shop/SESSION_KEY", "s3cret")},
)


def test_an_unchanged_fingerprint_is_not_stale() -> None:
    assert sp.stale_reasons(BASE, replace(BASE)) == []


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"spec_sha256": "b" * 64}, "hosting.yaml changed since it was made"),
        (
            {"stack_update": "refresh #0 2026-11-29T15:00:10Z → 15:00:12Z succeeded"},
            "the stack was updated since it was made (last update then: update #0 "
            "2026-11-29T14:59:13Z → 14:59:16Z succeeded; now: refresh #0",
        ),
        (
            {
                "secrets": {
                    "acme/shop/SESSION_KEY": sp.secret_digest(
                        "pass", "acme/shop/SESSION_KEY", "other"
                    )
                }
            },
            "secrets changed since it was made: acme/shop/SESSION_KEY",
        ),
        ({"secrets": {}}, "secrets changed since it was made: acme/shop/SESSION_KEY"),
        ({"tool_version": "0.2.0"}, "it was made by hosting 0.1.0"),
    ],
)
def test_each_change_makes_the_plan_stale_and_names_itself(
    change: dict[str, object], reason: str
) -> None:
    now = replace(BASE, **change)  # type: ignore[arg-type]
    reasons = sp.stale_reasons(BASE, now)
    assert len(reasons) == 1 and reasons[0].startswith(reason)
    with pytest.raises(StalePlanError, match=r"the plan p\.json is stale: "):
        sp.refuse_if_stale(Path("p.json"), BASE, now)


def test_a_secret_digest_depends_on_the_value_and_the_passphrase_and_hides_the_value() -> None:
    d = sp.secret_digest("pass", "k", "s3cret")
    assert d != sp.secret_digest("pass", "k", "s3cret2")
    assert d != sp.secret_digest("other-pass", "k", "s3cret")
    assert "s3cret" not in d and len(d) == 64


def test_the_file_round_trips_private_and_holds_no_secret_value(tmp_path: Path) -> None:
    path = tmp_path / "plan.bin"
    plan = sp.SavedPlan(BASE, {"format_version": 1, "changes": False}, {"resourcePlans": {}})
    sp.write(path, plan)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert "s3cret" not in path.read_text()
    back = sp.read(path)
    assert back.fingerprint == BASE and back.report == plan.report
    assert back.engine_plan == plan.engine_plan


@pytest.mark.parametrize(
    ("content", "why"),
    [
        ("not json", "is not a plan file: Expecting value"),
        ('{"kind": "other"}', 'is not a plan file: no "kind": "hosting-plan"'),
        ('{"kind": "hosting-plan", "format_version": 9}', "format_version 9; this hosting reads 1"),
        ('{"kind": "hosting-plan", "format_version": 1}', "is not a plan file: incomplete"),
    ],
)
def test_a_file_that_is_not_a_plan_is_refused_by_name(
    tmp_path: Path, content: str, why: str
) -> None:
    path = tmp_path / "p.bin"
    path.write_text(content)
    with pytest.raises(UsageError, match=why):
        sp.read(path)


def test_a_missing_plan_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"no plan file .*missing\.bin"):
        sp.read(tmp_path / "missing.bin")
