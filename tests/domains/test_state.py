"""Verification state in a real DuckDB store, checked against real DNS on loopback."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb

from hosting.domains import (
    make_resolver,
    newly_verified,
    recheck_pending,
    states,
    verified_domains,
    verify,
)
from tests.domains.helpers import ChallTestSrv, make_spec, unique

T0 = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def test_pending_failed_verified_with_reason_and_time(
    challtestsrv: ChallTestSrv, tmp_path: Path
) -> None:
    store = tmp_path / "hosting.duckdb"
    d = unique()
    spec = make_spec([d], nameservers=[challtestsrv.nameserver])
    ((_cd, st),) = states(spec, store, now=T0)
    assert (st.state, st.checked_at, st.added_at) == ("pending", None, T0)

    challtestsrv.add_a(d, "10.1.1.1")
    ((res, st),) = verify(spec, store, d, now=T0 + timedelta(minutes=1))
    assert not res.ok
    assert st.state == "failed"
    assert st.reason == f"{d} points at 10.1.1.1, not at the platform's 127.0.0.1"
    assert st.checked_at == T0 + timedelta(minutes=1) and st.verified_at is None
    assert verified_domains(spec, store) == frozenset()

    challtestsrv.clear_a(d)
    challtestsrv.add_a(d, "127.0.0.1")
    ((res, st),) = verify(spec, store, d, now=T0 + timedelta(minutes=2))
    assert res.ok and st.state == "verified"
    assert st.verified_at == T0 + timedelta(minutes=2)
    assert verified_domains(spec, store) == frozenset({d})

    with duckdb.connect(str(store), read_only=True) as conn:
        rows = conn.execute(
            "SELECT ok, reason FROM domain_checks WHERE domain = ? ORDER BY checked_at", [d]
        ).fetchall()
    assert rows == [
        (False, f"{d} points at 10.1.1.1, not at the platform's 127.0.0.1"),
        (True, "A → 127.0.0.1"),
    ]


def test_dns_outage_keeps_a_verified_domain_verified(
    challtestsrv: ChallTestSrv, tmp_path: Path
) -> None:
    store = tmp_path / "hosting.duckdb"
    d = unique()
    spec = make_spec([d], nameservers=[challtestsrv.nameserver])
    challtestsrv.add_a(d, "127.0.0.1")
    verify(spec, store, d, now=T0)
    challtestsrv.set_servfail(d)
    ((res, st),) = verify(spec, store, d, now=T0 + timedelta(minutes=1))
    assert res.transient and not res.ok
    assert st.state == "verified"
    assert (
        st.reason is not None and st.reason.startswith("last check: ") and "SERVFAIL" in st.reason
    )
    assert st.verified_at == T0  # unchanged: it never stopped being verified


def test_recheck_pending_paces_itself_every_five_minutes(
    challtestsrv: ChallTestSrv, tmp_path: Path
) -> None:
    store = tmp_path / "hosting.duckdb"
    good, bad = unique("good"), unique("bad")
    spec = make_spec([good, bad], nameservers=[challtestsrv.nameserver])
    challtestsrv.add_a(good, "127.0.0.1")
    challtestsrv.add_a(bad, "10.2.2.2")

    first = recheck_pending(spec, store, T0)
    assert newly_verified(first) == [good]
    assert sorted((st.domain, st.state) for _r, st in first) == sorted(
        [(good, "verified"), (bad, "failed")]
    )
    assert recheck_pending(spec, store, T0 + timedelta(minutes=4, seconds=59)) == []

    challtestsrv.clear_a(bad)
    challtestsrv.add_a(bad, "127.0.0.1")
    again = recheck_pending(spec, store, T0 + timedelta(minutes=5))
    assert [(st.domain, st.state) for _r, st in again] == [(bad, "verified")]
    assert newly_verified(again) == [bad]
    assert recheck_pending(spec, store, T0 + timedelta(hours=1)) == []
    assert verified_domains(spec, store) == frozenset({good, bad})


def test_a_domain_moved_to_another_deployment_must_verify_again(
    challtestsrv: ChallTestSrv, tmp_path: Path
) -> None:
    store = tmp_path / "hosting.duckdb"
    d = unique()
    challtestsrv.add_a(d, "127.0.0.1")
    before = make_spec([d], nameservers=[challtestsrv.nameserver])
    verify(before, store, d, now=T0)
    assert verified_domains(before, store) == frozenset({d})

    after = make_spec([d], nameservers=[challtestsrv.nameserver], deployment="blog")
    assert verified_domains(after, store) == frozenset()
    ((_cd, st),) = states(after, store, now=T0 + timedelta(minutes=1))
    assert (st.state, st.deployment) == ("pending", "blog")
    assert st.reason == "moved from acme/shop: verify again"


def test_verified_domains_without_a_store_is_empty(tmp_path: Path) -> None:
    spec = make_spec([unique()], nameservers=["127.0.0.1:9"])
    assert verified_domains(spec, tmp_path / "missing.duckdb") == frozenset()


def test_the_provider_driver_sees_the_verified_domains(
    challtestsrv: ChallTestSrv, tmp_path: Path
) -> None:
    """apply builds the edge config from `hosting.provider.driver.verified_domains`, which
    finds this module through `hosting.edge.domains` with the state directory."""
    from hosting.provider.driver import verified_domains as driver_verified

    good, bad = unique("good"), unique("bad")
    challtestsrv.add_a(good, "127.0.0.1")
    challtestsrv.add_a(bad, "10.4.4.4")
    spec = make_spec([good, bad], nameservers=[challtestsrv.nameserver])
    assert driver_verified(spec, tmp_path) == frozenset()
    verify(spec, tmp_path / "hosting.duckdb", now=T0)
    assert driver_verified(spec, tmp_path) == frozenset({good})


def test_verifying_while_the_check_runs_then_failed_on_timeout(
    silent_server: str, tmp_path: Path
) -> None:
    store = tmp_path / "hosting.duckdb"
    d = unique()
    spec = make_spec([d], nameservers=[silent_server])
    outcome: list[object] = []
    worker = threading.Thread(
        target=lambda: outcome.extend(
            verify(spec, store, d, now=T0, resolver=make_resolver([silent_server], timeout=2))
        )
    )
    worker.start()
    seen = set()
    deadline = time.monotonic() + 10
    while worker.is_alive() and time.monotonic() < deadline:
        if store.exists():
            seen.update(st.state for _cd, st in states(spec, store, now=T0))
        time.sleep(0.05)
    worker.join()
    assert "verifying" in seen
    ((_cd, st),) = states(spec, store, now=T0)
    assert st.state == "failed"
    assert st.reason == f"no answer for {d} (A) from {silent_server} within 2s (timeout)"
