"""The tenant firewall: what a tenant's containers may reach on the host and beyond.

Docker's own chains keep tenants' bridges apart, but nothing stops a tenant at the host
(any service bound to 0.0.0.0 answers on its bridge's gateway address) or on the way out
(every address the host routes to: the LAN, a cloud's metadata service). Apply installs two
filters for the bridges of this platform's tenant networks, the ones labelled
`hosting.type=network` whose name starts with `<platform>_` (SPEC section 5):

- INPUT, packets from a tenant bridge to the host: only replies (ESTABLISHED, RELATED) and
  the edge's published ports pass (a tenant calling a site by its public address on this
  host may reach the edge through docker-proxy). Docker's embedded DNS answers inside the
  container's own namespace, and the metering agent's probes start on the host: neither
  needs more.
- egress (jumped to from DOCKER-USER, the chain Docker leaves to operators), packets a
  tenant bridge forwards: replies, its own bridge, and connections to published ports
  (DNAT: the edge) pass; private and special-purpose ranges are dropped (RFC 1918, CGNAT
  100.64/10, link-local 169.254/16 with cloud metadata, loopback, 0/8, multicast and
  reserved), except port 53 of the host's own resolvers, to which Docker's embedded DNS
  forwards tenants' queries from the container's namespace. The public internet passes.

Each platform has its own chains, named by a hash of its name (iptables allows 28
characters): a dispatch chain matching its bridges by interface, which goes to a policy
chain. Both are rebuilt atomically (iptables-restore --noflush) on every apply from the
networks that exist, and removed with the jumps when none is left. IPv4 only: tenant
networks are created without IPv6.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import os
import shutil
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from hosting.errors import ProviderError
from hosting.spec.models import Spec

# Never routed to from a tenant, whatever the host's routes say.
PRIVATE_RANGES = (
    "0.0.0.0/8",  # "this network"
    "10.0.0.0/8",  # RFC 1918
    "100.64.0.0/10",  # carrier-grade NAT (RFC 6598)
    "127.0.0.0/8",  # loopback
    "169.254.0.0/16",  # link-local: cloud metadata (169.254.169.254)
    "172.16.0.0/12",  # RFC 1918: other Docker bridges too
    "192.0.0.0/24",  # IETF protocol assignments
    "192.168.0.0/16",  # RFC 1918
    "198.18.0.0/15",  # benchmarking
    "224.0.0.0/3",  # multicast and reserved (224/4 + 240/4)
)
INPUT_JUMP_FROM = "INPUT"
EGRESS_JUMP_FROM = "DOCKER-USER"
RESOLV_CONF = Path("/etc/resolv.conf")
SYSTEMD_RESOLV_CONF = Path("/run/systemd/resolve/resolv.conf")


@dataclass(frozen=True)
class Chains:
    input: str
    input_policy: str
    egress: str
    egress_policy: str

    def all(self) -> tuple[str, str, str, str]:
        return (self.input, self.input_policy, self.egress, self.egress_policy)


def chains(platform: str) -> Chains:
    tag = hashlib.sha256(platform.encode()).hexdigest()[:8]
    return Chains(
        f"HOSTING-INPUT-{tag}",
        f"HOSTING-INPOL-{tag}",
        f"HOSTING-EGRESS-{tag}",
        f"HOSTING-EGPOL-{tag}",
    )


def jump_rule(platform: str, chain: str) -> list[str]:
    return ["-m", "comment", "--comment", f"hosting {platform}", "-j", chain]


def ruleset(
    platform: str, bridges: Iterable[str], edge_ports: Iterable[int], resolvers: Iterable[str]
) -> str:
    """The iptables-restore text (filter table, --noflush) that replaces this platform's four
    chains. A chain declared in the text is created or flushed, atomically with the rest."""
    c = chains(platform)
    lines = ["*filter", *(f":{name} - [0:0]" for name in c.all())]
    for bridge in sorted(set(bridges)):
        lines.append(f"-A {c.input} -i {bridge} -g {c.input_policy}")
        lines.append(f"-A {c.egress} -i {bridge} -o {bridge} -j RETURN")
        lines.append(f"-A {c.egress} -i {bridge} -g {c.egress_policy}")
    established = "-m conntrack --ctstate RELATED,ESTABLISHED -j RETURN"
    lines.append(f"-A {c.input_policy} {established}")
    ports = ",".join(str(p) for p in sorted(set(edge_ports)))
    if ports:
        lines.append(f"-A {c.input_policy} -p tcp -m multiport --dports {ports} -j RETURN")
    lines.append(f"-A {c.input_policy} -j DROP")
    lines.append(f"-A {c.egress_policy} {established}")
    lines.append(f"-A {c.egress_policy} -m conntrack --ctstate DNAT -j RETURN")
    for ip in sorted(set(resolvers)):
        for proto in ("udp", "tcp"):
            lines.append(f"-A {c.egress_policy} -d {ip}/32 -p {proto} --dport 53 -j RETURN")
    for cidr in PRIVATE_RANGES:
        lines.append(f"-A {c.egress_policy} -d {cidr} -j DROP")
    lines.append("COMMIT")
    return "\n".join(lines) + "\n"


def host_resolvers(
    resolv_conf: Path = RESOLV_CONF, systemd: Path = SYSTEMD_RESOLV_CONF
) -> list[str]:
    """The upstream resolvers Docker's embedded DNS forwards to from a container's namespace,
    as dockerd picks them: /etc/resolv.conf, or systemd-resolved's upstream list when that
    file names only a loopback stub. Private ones need an exemption from the egress filter."""
    found = _nameservers(resolv_conf)
    if found and all(ipaddress.ip_address(ip).is_loopback for ip in found):
        found = _nameservers(systemd)
    return [ip for ip in found if not ipaddress.ip_address(ip).is_loopback]


def _nameservers(path: Path) -> list[str]:
    try:
        text = path.read_text()
    except OSError:
        return []
    out = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0] == "nameserver":
            try:
                if ipaddress.ip_address(parts[1]).version == 4:
                    out.append(parts[1])
            except ValueError:
                continue
    return out


def iptables(*args: str, check: bool = True, stdin: str | None = None) -> str:
    binary = "iptables-restore" if stdin is not None else "iptables"
    out = subprocess.run(
        [binary, *args], input=stdin, capture_output=True, text=True, timeout=60, check=False
    )
    if check and out.returncode != 0:
        last = (out.stderr.strip().splitlines() or ["no message"])[-1]
        raise ProviderError(
            f"{binary} {' '.join(args[:2])} failed: {last}",
            "the tenant firewall is not complete; fix the host's iptables and apply again",
        )
    return out.stdout


def can_install() -> str | None:
    """Why this process cannot change the host's firewall, or None when it can."""
    if os.geteuid() != 0:
        return "it needs root"
    if shutil.which("iptables") is None or shutil.which("iptables-restore") is None:
        return "iptables is not installed"
    return None


def install(
    platform: str, bridges: Iterable[str], edge_ports: Iterable[int], resolvers: Iterable[str]
) -> None:
    """This platform's chains, as `ruleset` says, with one jump each from INPUT and
    DOCKER-USER (first, so that the operator's own accepts there cannot let a tenant past)."""
    c = chains(platform)
    iptables("--noflush", stdin=ruleset(platform, bridges, edge_ports, resolvers))
    for parent, chain in ((INPUT_JUMP_FROM, c.input), (EGRESS_JUMP_FROM, c.egress)):
        rule = jump_rule(platform, chain)
        if not _has(parent, rule):
            iptables("-I", parent, "1", *rule)


def remove(platform: str) -> None:
    """The jumps and the chains, whatever of them exists (what install made, or half of it)."""
    c = chains(platform)
    for parent, chain in ((INPUT_JUMP_FROM, c.input), (EGRESS_JUMP_FROM, c.egress)):
        rule = jump_rule(platform, chain)
        while _has(parent, rule):
            iptables("-D", parent, *rule)
    for name in c.all():  # flush all first: the dispatch chains go to the policy chains
        iptables("-F", name, check=False)
    for name in c.all():
        iptables("-X", name, check=False)


def _has(parent: str, rule: list[str]) -> bool:
    out = subprocess.run(
        ["iptables", "-C", parent, *rule], capture_output=True, text=True, timeout=60
    )
    return out.returncode == 0


def bridge_of(network: dict[str, object]) -> str:
    """The host interface of a Docker bridge network (`docker network inspect` output)."""
    options = network.get("Options") or {}
    assert isinstance(options, dict)
    name = options.get("com.docker.network.bridge.name")
    return str(name) if name else f"br-{str(network['Id'])[:12]}"


def tenant_bridges(networks_json: str, platform: str) -> list[str]:
    """The bridges of this platform's tenant networks, from `docker network inspect` of the
    networks labelled `hosting.type=network`."""
    out = []
    for network in json.loads(networks_json or "[]"):
        labels = network.get("Labels") or {}
        name = str(network.get("Name", ""))
        if labels.get("hosting.type") != "network" or not name.startswith(f"{platform}_"):
            continue
        if network.get("Driver") == "bridge":
            out.append(bridge_of(network))
    return sorted(out)


def sync(spec: Spec, edge_ports: Iterable[int]) -> str | None:
    """Rebuild this platform's chains from the tenant networks on the engine now (removed
    when there are none). Returns why nothing could be done, as a warning for the operator:
    a remote engine's host, or a process without root."""
    from hosting.provider.runtime import docker

    if not spec.platform.docker.host.startswith("unix://"):
        return "the tenant firewall is not installed: the engine is on another host"
    why = can_install()
    if why is not None:
        return f"the tenant firewall is not installed: {why} (run apply as root)"
    platform = spec.platform.name
    ids = docker(spec, "network", "ls", "-q", "--filter", "label=hosting.type=network").split()
    bridges = tenant_bridges(docker(spec, "network", "inspect", *ids) if ids else "[]", platform)
    if bridges:
        install(platform, bridges, edge_ports, host_resolvers())
    else:
        remove(platform)
    return None
