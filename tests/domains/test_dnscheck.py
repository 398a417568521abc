"""The resolver logic against real DNS servers on loopback (pebble-challtestsrv, plus an
NXDOMAIN server and a silent one for what challtestsrv cannot do)."""

from __future__ import annotations

import pytest

from hosting.domains import check, make_resolver
from hosting.domains.dnscheck import parse_nameserver
from hosting.domains.records import find
from hosting.spec import names
from tests.domains.helpers import ChallTestSrv, make_spec, unique

GENERATED = names.hostname("acme", "shop", "web", "apps.localhost")


def _check(srv: str, domains: list[str], domain: str, **kw: str | None):  # type: ignore[no-untyped-def]
    spec = make_spec(domains, nameservers=[srv], **kw)
    return check(spec, find(spec, domain), make_resolver([srv], timeout=2))


def test_a_record_at_the_platform_verifies(challtestsrv: ChallTestSrv) -> None:
    d = unique()
    challtestsrv.add_a(d, "127.0.0.1")
    result = _check(challtestsrv.nameserver, [d], d)
    assert result.ok, result.reason
    assert result.addresses == ("127.0.0.1",)
    assert result.reason == "A → 127.0.0.1"


def test_a_record_elsewhere_fails_with_the_address(challtestsrv: ChallTestSrv) -> None:
    d = unique()
    challtestsrv.add_a(d, "10.9.8.7")
    result = _check(challtestsrv.nameserver, [d], d)
    assert not result.ok and not result.transient
    assert result.reason == f"{d} points at 10.9.8.7, not at the platform's 127.0.0.1"


def test_one_wrong_address_among_several_fails(challtestsrv: ChallTestSrv) -> None:
    d = unique()
    challtestsrv.add_a(d, "127.0.0.1", "10.0.0.5")
    result = _check(challtestsrv.nameserver, [d], d)
    assert not result.ok
    assert result.reason == f"{d} points at 10.0.0.5, not at the platform's 127.0.0.1"


def test_record_fixed_later_verifies_then(challtestsrv: ChallTestSrv) -> None:
    d = unique()
    challtestsrv.add_a(d, "192.0.2.1")
    assert not _check(challtestsrv.nameserver, [d], d).ok
    challtestsrv.clear_a(d)
    challtestsrv.add_a(d, "127.0.0.1")
    assert _check(challtestsrv.nameserver, [d], d).ok


def test_cname_to_the_generated_subdomain_verifies(challtestsrv: ChallTestSrv) -> None:
    d = unique()
    challtestsrv.set_cname(d, GENERATED)
    result = _check(challtestsrv.nameserver, [d], d)
    assert result.ok, result.reason
    assert result.chain == (d, GENERATED)
    assert result.reason == f"CNAME to {GENERATED}"


def test_cname_chain_is_followed_to_the_address(challtestsrv: ChallTestSrv) -> None:
    d, mid, end = unique("d"), unique("mid"), unique("end")
    challtestsrv.set_cname(d, mid)
    challtestsrv.set_cname(mid, end)
    challtestsrv.add_a(end, "127.0.0.1")
    result = _check(challtestsrv.nameserver, [d], d)
    assert result.ok, result.reason
    assert result.chain == (d, mid, end)


def test_cname_to_a_foreign_host_fails_naming_the_chain(challtestsrv: ChallTestSrv) -> None:
    d, other = unique(), unique("other")
    challtestsrv.set_cname(d, other)
    challtestsrv.add_a(other, "198.51.100.4")
    result = _check(challtestsrv.nameserver, [d], d)
    assert not result.ok
    assert result.reason == (
        f"{d} points at 198.51.100.4 (via CNAME {other}), not at the platform's 127.0.0.1"
    )


def test_no_record_is_no_answer(challtestsrv: ChallTestSrv) -> None:
    d = unique()
    result = _check(challtestsrv.nameserver, [d], d)
    assert not result.ok and not result.transient
    assert result.reason == f"{d} has no A record (no answer)"


def test_cname_to_a_name_without_address(challtestsrv: ChallTestSrv) -> None:
    d, other = unique(), unique("other")
    challtestsrv.set_cname(d, other)
    result = _check(challtestsrv.nameserver, [d], d)
    assert not result.ok
    assert result.reason == f"{d} is a CNAME to {other}, which has no A record"


def test_servfail_is_transient(challtestsrv: ChallTestSrv) -> None:
    d = unique()
    challtestsrv.set_servfail(d)
    result = _check(challtestsrv.nameserver, [d], d)
    assert not result.ok and result.transient
    assert "SERVFAIL" in result.reason and challtestsrv.nameserver in result.reason


def test_nxdomain_says_the_name_does_not_exist(nxdomain_server: str) -> None:
    d = unique()
    result = _check(nxdomain_server, [d], d)
    assert not result.ok and not result.transient
    assert result.reason == f"{d} does not exist in DNS (NXDOMAIN)"


def test_dangling_cname_names_the_missing_target(nxdomain_server: str) -> None:
    d = "alias-" + unique()
    target = "gone-" + d[len("alias-") :]
    result = _check(nxdomain_server, [d], d)
    assert not result.ok and not result.transient
    assert result.reason == f"{d} is a CNAME to {target}, which does not exist (NXDOMAIN)"
    assert result.chain == (d, target)


def test_timeout_names_the_server_and_the_limit(silent_server: str) -> None:
    d = unique()
    spec = make_spec([d], nameservers=[silent_server])
    result = check(spec, find(spec, d), make_resolver([silent_server], timeout=1))
    assert not result.ok and result.transient
    assert result.reason == f"no answer for {d} (A) from {silent_server} within 1s (timeout)"


def test_www_as_cname_to_the_apex_verifies(challtestsrv: ChallTestSrv) -> None:
    apex = unique()
    challtestsrv.add_a(apex, "127.0.0.1")
    challtestsrv.set_cname("www." + apex, apex)
    result = _check(challtestsrv.nameserver, [apex, "www." + apex], "www." + apex)
    assert result.ok, result.reason
    assert result.reason == f"CNAME to {apex}"


def test_www_as_cname_elsewhere_fails(challtestsrv: ChallTestSrv) -> None:
    apex, other = unique(), unique("other")
    challtestsrv.set_cname("www." + apex, other)
    challtestsrv.add_a(other, "203.0.113.9")
    result = _check(challtestsrv.nameserver, [apex, "www." + apex], "www." + apex)
    assert not result.ok
    assert "203.0.113.9" in result.reason and other in result.reason


def test_aaaa_without_platform_ipv6_fails(challtestsrv: ChallTestSrv) -> None:
    d = unique()
    challtestsrv.add_a(d, "127.0.0.1")
    challtestsrv.add_aaaa(d, "2001:db8::1")
    result = _check(challtestsrv.nameserver, [d], d)
    assert not result.ok
    assert "AAAA 2001:db8::1" in result.reason and "remove the AAAA record" in result.reason


def test_aaaa_at_the_platform_ipv6_verifies(challtestsrv: ChallTestSrv) -> None:
    d = unique()
    challtestsrv.add_a(d, "127.0.0.1")
    challtestsrv.add_aaaa(d, "2001:db8:0:0::10")
    result = _check(challtestsrv.nameserver, [d], d, public_ipv6="2001:db8::10")
    assert result.ok, result.reason
    assert result.reason == "A → 127.0.0.1, AAAA → 2001:db8::10"


def test_aaaa_elsewhere_with_platform_ipv6_fails(challtestsrv: ChallTestSrv) -> None:
    d = unique()
    challtestsrv.add_a(d, "127.0.0.1")
    challtestsrv.add_aaaa(d, "2001:db8::99")
    result = _check(challtestsrv.nameserver, [d], d, public_ipv6="2001:db8::10")
    assert not result.ok
    assert result.reason == f"{d} has AAAA 2001:db8::99, not the platform's 2001:db8::10"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.1", ("127.0.0.1", 53)),
        ("127.0.0.1:8053", ("127.0.0.1", 8053)),
        ("::1", ("::1", 53)),
        ("[::1]:5353", ("::1", 5353)),
    ],
)
def test_nameserver_forms(text: str, expected: tuple[str, int]) -> None:
    assert parse_nameserver(text) == expected
