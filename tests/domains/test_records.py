"""Required DNS records per domain (pure)."""

from __future__ import annotations

import pytest

from hosting.domains.records import Record, custom_domains, find, required_records
from hosting.errors import NotFoundError
from tests.domains.helpers import make_spec

GENERATED = "web-"  # prefix of every web deployment's generated subdomain


def test_apex_needs_a_or_cname_to_the_generated_subdomain() -> None:
    spec = make_spec(["shop.acme.test", "www.shop.acme.test"], nameservers=[])
    cd = find(spec, "shop.acme.test")
    req = required_records(spec, cd)
    assert req.records == (Record("A", "shop.acme.test", "127.0.0.1"),)
    (alt,) = req.alternative
    assert alt.type == "CNAME" and alt.name == "shop.acme.test"
    assert alt.value.startswith(GENERATED) and alt.value.endswith(".apps.localhost")
    assert cd.apex is None


def test_www_next_to_its_apex_is_a_cname_to_the_apex() -> None:
    spec = make_spec(["shop.acme.test", "www.shop.acme.test"], nameservers=[])
    cd = find(spec, "www.shop.acme.test")
    assert cd.apex == "shop.acme.test"
    req = required_records(spec, cd)
    assert req.records == (Record("CNAME", "www.shop.acme.test", "shop.acme.test"),)
    assert req.alternative == ()


def test_www_alone_is_an_ordinary_domain() -> None:
    spec = make_spec(["www.other.test"], nameservers=[])
    cd = find(spec, "www.other.test")
    assert cd.apex is None
    assert required_records(spec, cd).records == (Record("A", "www.other.test", "127.0.0.1"),)


def test_ipv6_platform_adds_aaaa() -> None:
    spec = make_spec(["shop.acme.test"], nameservers=[], public_ipv6="2001:db8::10")
    req = required_records(spec, find(spec, "shop.acme.test"))
    assert req.records == (
        Record("A", "shop.acme.test", "127.0.0.1"),
        Record("AAAA", "shop.acme.test", "2001:db8::10"),
    )


def test_unknown_domain_and_tenant() -> None:
    spec = make_spec(["shop.acme.test"], nameservers=[])
    with pytest.raises(NotFoundError, match="not a custom domain"):
        find(spec, "nope.test")
    with pytest.raises(NotFoundError, match="unknown tenant `nobody`"):
        custom_domains(spec, "nobody")
    assert [c.domain for c in custom_domains(spec, "acme")] == ["shop.acme.test"]
