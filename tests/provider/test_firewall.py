"""The tenant firewall's rules, and their install and removal on the host's real iptables.

What the rules stop is proven from inside a tenant's container in
tests/docker_runtime/test_hostile_tenant.py; here: which rules, scoped to which bridges, and
that apply's rebuild is idempotent and leaves nothing behind. Every rule named here matches
only this test's own bridge (or a bridge name that does not exist), so tests running beside
these are never affected.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from hosting.provider import firewall
from hosting.spec import loads
from hosting.spec.models import Spec
from tests.conftest import require


def test_the_rules_of_one_platform_with_two_bridges() -> None:
    text = firewall.ruleset("demo", ["br-bbb", "br-aaa"], [443, 80], ["10.0.0.2"])
    tag = "2a97516c"  # sha256("demo")[:8]
    i, ip = f"HOSTING-INPUT-{tag}", f"HOSTING-INPOL-{tag}"
    e, ep = f"HOSTING-EGRESS-{tag}", f"HOSTING-EGPOL-{tag}"
    assert text.splitlines() == [
        "*filter",
        f":{i} - [0:0]",
        f":{ip} - [0:0]",
        f":{e} - [0:0]",
        f":{ep} - [0:0]",
        # dispatch: only the platform's bridges go to the policies
        f"-A {i} -i br-aaa -g {ip}",
        f"-A {e} -i br-aaa -o br-aaa -j RETURN",
        f"-A {e} -i br-aaa -g {ep}",
        f"-A {i} -i br-bbb -g {ip}",
        f"-A {e} -i br-bbb -o br-bbb -j RETURN",
        f"-A {e} -i br-bbb -g {ep}",
        # to the host: replies and the edge's published ports, nothing else
        f"-A {ip} -m conntrack --ctstate RELATED,ESTABLISHED -j RETURN",
        f"-A {ip} -p tcp -m multiport --dports 80,443 -j RETURN",
        f"-A {ip} -j DROP",
        # out: replies, published ports, the host's resolver, then no private range
        f"-A {ep} -m conntrack --ctstate RELATED,ESTABLISHED -j RETURN",
        f"-A {ep} -m conntrack --ctstate DNAT -j RETURN",
        f"-A {ep} -d 10.0.0.2/32 -p udp --dport 53 -j RETURN",
        f"-A {ep} -d 10.0.0.2/32 -p tcp --dport 53 -j RETURN",
        f"-A {ep} -d 0.0.0.0/8 -j DROP",
        f"-A {ep} -d 10.0.0.0/8 -j DROP",
        f"-A {ep} -d 100.64.0.0/10 -j DROP",
        f"-A {ep} -d 127.0.0.0/8 -j DROP",
        f"-A {ep} -d 169.254.0.0/16 -j DROP",
        f"-A {ep} -d 172.16.0.0/12 -j DROP",
        f"-A {ep} -d 192.0.0.0/24 -j DROP",
        f"-A {ep} -d 192.168.0.0/16 -j DROP",
        f"-A {ep} -d 198.18.0.0/15 -j DROP",
        f"-A {ep} -d 224.0.0.0/3 -j DROP",
        "COMMIT",
    ]


def test_chain_names_fit_iptables_and_differ_per_platform() -> None:
    longest = "p" + "a" * 39  # the longest platform name the spec allows
    for name in firewall.chains(longest).all():
        assert len(name) <= 28  # iptables' limit (XT_EXTENSION_MAXNAMELEN - 1)
    assert set(firewall.chains("a").all()).isdisjoint(firewall.chains("b").all())


def test_resolvers_as_dockerd_picks_them(tmp_path: Path) -> None:
    conf, systemd = tmp_path / "resolv.conf", tmp_path / "systemd.conf"
    conf.write_text("# comment\nnameserver 10.1.2.3\nnameserver fe80::1\nsearch x\n")
    assert firewall.host_resolvers(conf, systemd) == ["10.1.2.3"]  # IPv4 only: no v6 rules
    conf.write_text("nameserver 127.0.0.53\noptions edns0\n")  # systemd-resolved's stub
    systemd.write_text("nameserver 192.168.1.1\nnameserver 1.1.1.1\n")
    assert firewall.host_resolvers(conf, systemd) == ["192.168.1.1", "1.1.1.1"]
    assert firewall.host_resolvers(tmp_path / "missing", systemd) == []


def test_tenant_bridges_are_this_platforms_labelled_networks() -> None:
    def net(name: str, kind: str, **extra: object) -> dict[str, object]:
        return {"Name": name, "Id": "0123456789abcdef", "Driver": "bridge",
                "Labels": {"hosting.type": kind}, "Options": {}, **extra}  # fmt: skip

    networks = [
        net("demo_acme", "network"),
        net("demo_globex", "network", Id="fedcba9876543210"),
        net("demo_named", "network", Options={"com.docker.network.bridge.name": "br-own"}),
        net("demo2_acme", "network"),  # another platform whose name starts the same
        net("demo_hx_control", "control"),  # labelled, but not a tenant network
    ]
    assert firewall.tenant_bridges(json.dumps(networks), "demo") == [
        "br-0123456789ab", "br-fedcba987654", "br-own",
    ]  # fmt: skip


def _iptables_s(chain: str | None = None) -> list[str]:
    out = subprocess.run(
        ["iptables", "-S", *([chain] if chain else [])], capture_output=True, text=True
    )
    return out.stdout.splitlines() if out.returncode == 0 else []


@pytest.fixture
def network(docker_engine: str) -> Iterator[tuple[str, str]]:
    """(platform, bridge): a labelled tenant network of a platform of this test's own."""
    require(os.geteuid() == 0, "root (to change the host's iptables)")
    platform = "fw" + secrets.token_hex(4)
    name = f"{platform}_acme"
    subprocess.run(
        ["docker", "network", "create", "--label", "hosting.type=network", name],
        check=True, capture_output=True,
    )  # fmt: skip
    try:
        inspected = subprocess.run(
            ["docker", "network", "inspect", name], capture_output=True, text=True, check=True
        ).stdout
        yield platform, firewall.bridge_of(json.loads(inspected)[0])
    finally:
        firewall.remove(platform)
        subprocess.run(["docker", "network", "rm", name], capture_output=True)


def _spec(platform: str) -> Spec:
    return loads(
        f"version: 1\nplatform: {{name: {platform}, domain: apps.test, public_ipv4: 127.0.0.1}}\n"
    )


@pytest.mark.docker
@pytest.mark.root
def test_apply_installs_once_and_the_last_tenant_gone_removes_everything(
    network: tuple[str, str],
) -> None:
    platform, bridge = network
    c = firewall.chains(platform)
    spec = _spec(platform)
    assert firewall.sync(spec, [80, 443]) is None
    first = {name: _iptables_s(name) for name in c.all()}
    assert f"-A {c.input} -i {bridge} -g {c.input_policy}" in first[c.input]
    assert f"-A {c.egress} -i {bridge} -g {c.egress_policy}" in first[c.egress]
    assert f"-A {c.input_policy} -j DROP" in first[c.input_policy]
    jumps = [r for r in _iptables_s() if f"hosting {platform}" in r]
    assert jumps == [
        f'-A INPUT -m comment --comment "hosting {platform}" -j {c.input}',
        f'-A DOCKER-USER -m comment --comment "hosting {platform}" -j {c.egress}',
    ]
    # The jump to the egress chain comes before anything else in DOCKER-USER.
    assert _iptables_s("DOCKER-USER")[1] == jumps[1]
    # Applying again rebuilds the same rules, with one jump each.
    assert firewall.sync(spec, [80, 443]) is None
    assert {name: _iptables_s(name) for name in c.all()} == first
    assert [r for r in _iptables_s() if f"hosting {platform}" in r] == jumps
    # The last tenant network gone (destroy): chains and jumps go too.
    subprocess.run(["docker", "network", "rm", f"{platform}_acme"], check=True, capture_output=True)
    assert firewall.sync(spec, [80, 443]) is None
    assert not any(name in line for line in _iptables_s() for name in c.all())


def test_a_remote_engine_gets_a_warning_not_rules() -> None:
    spec = loads(
        "version: 1\nplatform: {name: p, domain: apps.test, public_ipv4: 127.0.0.1,"
        " docker: {host: 'tcp://10.9.9.9:2376'}}\n"
    )
    assert firewall.sync(spec, [80, 443]) == (
        "the tenant firewall is not installed: the engine is on another host"
    )
