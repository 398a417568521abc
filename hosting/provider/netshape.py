"""The plan's network rate, both ways, per container: `tc` on the host side of its veths.

Docker has no setting for it. Each interface of a running tenant container is one end of a
veth pair whose other end sits on the host, in a bridge. There:
- the host veth's egress is traffic into the container: a tbf at the plan's rate;
- its ingress is traffic out of the container. A qdisc cannot delay ingress, and this kernel
  family often lacks the ingress policer (act_police), so a u32 filter redirects all of it
  to an IFB device of its own, whose egress carries the same tbf. Shaping (a queue) rather
  than policing (drops) also keeps TCP at the rate instead of sawing below it.
Nothing lives inside the tenant's namespace, so no capability it might hold can undo it.

The veth and its qdiscs die with the container; its IFB does not, so every reconcile deletes
the IFBs whose veth is gone. Apply reconciles after the engine's up, and the metering agent on
its loop, so a container Docker restarted (a new netns, a new veth) gets its shaping back and
a changed plan changes the rate. Reapplying an unchanged rate changes nothing.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from hosting.errors import HostingError, ProviderError
from hosting.spec.models import Spec

if TYPE_CHECKING:
    from hosting.metering.engine import Engine

BYTES_PER_MBPS = 125_000  # tc reads rates back in bytes per second; 1 Mbps = 10^6 bit/s
LATENCY_MS = 20  # the queue tbf keeps before dropping: TCP backs off long before
MIN_BURST = 64 * 1024  # a whole GSO segment passes in one go at any rate
IFB_PREFIX = "hsifb"  # + the host veth's ifindex; 15 characters at most
U32_HANDLE = "800::1"
ROOT_HINT = (
    "tc needs CAP_NET_ADMIN in the host's network namespace: run apply and the agent as root"
)


@dataclass(frozen=True)
class Link:
    """One interface of the host, from `ip -j -d link show`."""

    ifindex: int
    name: str
    kind: str  # veth | ifb | bridge | … ("" for a plain device)
    peer: int | None  # a veth's other end, its ifindex in the other namespace
    up: bool = True


@dataclass
class Report:
    shaped: dict[str, int] = field(default_factory=dict)  # container → Mbps, where changed
    unchanged: int = 0  # containers already at their rate
    removed: list[str] = field(default_factory=list)  # IFBs whose veth was gone
    skipped: str | None = None  # why nothing could be done here


def burst_bytes(mbps: int) -> int:
    """10 ms at the rate: a smaller bucket runs dry between timer ticks and the measured rate
    falls short of the plan's at hundreds of Mbps."""
    return max(MIN_BURST, mbps * BYTES_PER_MBPS // 100)


def ifb_name(veth: Link) -> str:
    return f"{IFB_PREFIX}{veth.ifindex}"


def _run(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    if shutil.which(args[0]) is None:
        raise ProviderError(f"{args[0]} is not installed", "install iproute2 and util-linux")
    out = subprocess.run(list(args), capture_output=True, text=True, timeout=30, check=False)
    if check and out.returncode != 0:
        last = (out.stderr.strip().splitlines() or ["no message"])[-1]
        hint = ROOT_HINT if "not permitted" in last.lower() else None
        raise ProviderError(f"network rate: `{' '.join(args[:5])}` failed: {last}", hint)
    return out


def _json(*args: str) -> list[dict[str, Any]]:
    data = json.loads(_run(*args).stdout or "[]")
    return [d for d in data if isinstance(d, dict)]


def host_links() -> dict[int, Link]:
    links: dict[int, Link] = {}
    for d in _json("ip", "-j", "-d", "link", "show"):
        kind = str((d.get("linkinfo") or {}).get("info_kind", ""))
        peer = d.get("link_index")
        links[int(d["ifindex"])] = Link(
            int(d["ifindex"]),
            str(d["ifname"]),
            kind,
            int(peer) if peer is not None else None,
            "UP" in (d.get("flags") or []),
        )
    return links


def host_veths(pid: int, links: dict[int, Link]) -> list[Link] | None:
    """The host ends of every interface in the network namespace of process `pid`; None when
    the process is gone (the container stopped meanwhile)."""
    out = _run("nsenter", f"--target={pid}", "--net", "ip", "-j", "link", "show", check=False)
    if out.returncode != 0:
        if not os.path.exists(f"/proc/{pid}"):
            return None
        _run("nsenter", f"--target={pid}", "--net", "ip", "-j", "link", "show")  # raises
    found = []
    for d in json.loads(out.stdout or "[]"):
        peer = d.get("link_index")
        if peer is None or "link_netnsid" not in d:
            continue  # loopback, or a device with no end outside
        host = links.get(int(peer))
        # Both ends must name each other: a macvlan's parent, or a veth of some other
        # namespace that happens to carry the same index, is not this container's.
        if host is not None and host.kind == "veth" and host.peer == int(d["ifindex"]):
            found.append(host)
    return found


def _tbf_rate(dev: str) -> tuple[int, int] | None:
    """(rate in bytes/s, burst in bytes) of the device's root tbf, None without one."""
    for q in _json("tc", "-j", "qdisc", "show", "dev", dev):
        if q.get("root") and q.get("kind") == "tbf":
            opts = q.get("options") or {}
            return int(opts.get("rate", 0)), int(opts.get("burst", 0))
    return None


def _redirects_to(dev: str, ifb: str) -> bool:
    out = _run("tc", "-j", "filter", "show", "dev", dev, "parent", "ffff:", check=False)
    if out.returncode != 0:  # no ingress qdisc yet
        return False
    for f in json.loads(out.stdout or "[]"):
        for action in (f.get("options") or {}).get("actions") or []:
            if action.get("kind") == "mirred" and action.get("to_dev") == ifb:
                return True
    return False


def _at_rate(dev: str, mbps: int) -> bool:
    found = _tbf_rate(dev)
    if found is None:
        return False
    rate, burst = found
    # The kernel keeps the bucket in time units: it reads back a few bytes off.
    return rate == mbps * BYTES_PER_MBPS and abs(burst - burst_bytes(mbps)) <= 0.02 * burst


def is_shaped(veth: Link, mbps: int, links: dict[int, Link]) -> bool:
    ifb = ifb_name(veth)
    return (
        any(link.name == ifb and link.kind == "ifb" and link.up for link in links.values())
        and _at_rate(veth.name, mbps)
        and _at_rate(ifb, mbps)
        and _redirects_to(veth.name, ifb)
    )


def shape(veth: Link, mbps: int) -> None:
    """Both directions of one host veth at `mbps` (every step replaces: safe to repeat)."""
    ifb = ifb_name(veth)
    tbf = [
        "tbf",
        "rate",
        f"{mbps}mbit",
        "burst",
        str(burst_bytes(mbps)),
        "latency",
        f"{LATENCY_MS}ms",
    ]
    made = _run("ip", "link", "add", ifb, "type", "ifb", check=False)
    if made.returncode != 0 and "exists" not in made.stderr:
        _run("ip", "link", "add", ifb, "type", "ifb")  # raises with the message
    # The alias tells an operator reading `ip link` whose device this is.
    _run("ip", "link", "set", "dev", ifb, "up", "alias", f"hosting: ingress of {veth.name}")
    _run("tc", "qdisc", "replace", "dev", ifb, "root", *tbf)
    _run("tc", "qdisc", "replace", "dev", veth.name, "root", *tbf)
    _run("tc", "qdisc", "replace", "dev", veth.name, "handle", "ffff:", "ingress")
    _run(
        "tc", "filter", "replace", "dev", veth.name, "parent", "ffff:", "protocol", "all",
        "prio", "1", "handle", U32_HANDLE, "u32", "match", "u32", "0", "0",
        "action", "mirred", "egress", "redirect", "dev", ifb,
    )  # fmt: skip


def remove_orphans(links: dict[int, Link]) -> list[str]:
    """Delete our IFBs whose veth is gone (the container was removed or restarted)."""
    removed = []
    for link in links.values():
        if link.kind != "ifb" or not link.name.startswith(IFB_PREFIX):
            continue
        index = link.name.removeprefix(IFB_PREFIX)
        owner = links.get(int(index)) if index.isdigit() else None
        if owner is None or owner.kind != "veth":
            out = _run("ip", "link", "del", link.name, check=False)
            if out.returncode == 0:
                removed.append(link.name)
    return sorted(removed)


def wanted_rates(spec: Spec, engine: Engine) -> dict[str, tuple[int, int]]:
    """Each running tenant container of this platform → (its process id, the plan's Mbps).
    The edge carries every tenant's traffic and has no plan: it is not shaped."""
    prefix = f"{spec.platform.name}_"
    out: dict[str, tuple[int, int]] = {}
    for c in engine.containers(all=False):
        tenant = spec.tenants.get(c.tenant)
        if tenant is None or not c.name.startswith(prefix) or c.state != "running":
            continue
        pid = int((engine.inspect(c.id).get("State") or {}).get("Pid") or 0)
        if pid > 0:
            out[c.name] = (pid, spec.limits_of(tenant).network_mbps)
    return out


def unusable(host: str) -> str | None:
    """Why this process cannot shape the engine's containers, or None when it can."""
    if not host.startswith("unix://"):
        return "the engine is on another host"  # its veths are there, not here
    if os.geteuid() != 0:
        return "tc needs root (CAP_NET_ADMIN)"
    missing = [t for t in ("ip", "tc", "nsenter") if shutil.which(t) is None]
    if missing:
        return f"{', '.join(missing)} not installed (iproute2, util-linux)"
    return None


def reconcile(spec: Spec, engine: Engine | None = None) -> Report:
    """Every running tenant container at its plan's rate, both ways; orphan IFBs removed."""
    from hosting.metering.engine import Engine

    engine = engine or Engine(spec.platform.docker.host)
    report = Report(skipped=unusable(engine.host))
    if report.skipped is not None:
        return report
    wanted = wanted_rates(spec, engine)
    links = host_links()
    for name, (pid, mbps) in sorted(wanted.items()):
        veths = host_veths(pid, links)
        if veths is None:
            continue
        todo = [v for v in veths if not is_shaped(v, mbps, links)]
        for veth in todo:
            shape(veth, mbps)
        if todo:
            report.shaped[name] = mbps
        else:
            report.unchanged += 1
    report.removed = remove_orphans(host_links())
    return report


def enforce(spec: Spec) -> list[str]:
    """Apply's call: the same reconcile, its failures said as apply's. Returns a warning when
    this process cannot shape at all (as the storage bound and the firewall do)."""
    try:
        report = reconcile(spec)
    except HostingError as exc:
        raise ProviderError(
            f"could not set the network rate: {exc.message}",
            exc.hint or "the containers run unshaped until the agent or the next apply succeeds",
        ) from None
    if report.skipped is None:
        return []
    return [f"the plans' network rates are not enforced: {report.skipped} (run apply as root)"]
