"""Real DNS on loopback for the domain tests: pebble-challtestsrv, plus two tiny servers for
what it cannot do (answer NXDOMAIN; never answer). The e2e fixtures (Pebble, Caddy, an
upstream) live in e2e_fixtures.py and are imported here so pytest finds them."""

from __future__ import annotations

import socket
import subprocess
import threading
from collections.abc import Iterator

import dns.message
import dns.rcode
import dns.rrset
import pytest

from tests.domains.e2e_fixtures import (  # noqa: F401
    acme_stack,
    caddy_edge,
    edge_ports,
    pebble,
    upstreams,
)
from tests.domains.helpers import ChallTestSrv, free_port, wait_for_port


@pytest.fixture(scope="session")
def challtestsrv(pebble_binaries: tuple[str, str]) -> Iterator[ChallTestSrv]:
    dns_port, mgmt_port = free_port(), free_port()
    proc = subprocess.Popen(
        [
            pebble_binaries[1],
            "-dns01",
            f"127.0.0.1:{dns_port}",
            "-management",
            f"127.0.0.1:{mgmt_port}",
            "-http01",
            "",
            "-https01",
            "",
            "-tlsalpn01",
            "",
            # No default answers: an unknown name has no address, as in real DNS.
            "-defaultIPv4",
            "",
            "-defaultIPv6",
            "",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(mgmt_port, proc, "pebble-challtestsrv")
        wait_for_port(dns_port, proc, "pebble-challtestsrv DNS")
        yield ChallTestSrv(dns_port, mgmt_port)
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture(scope="session")
def nxdomain_server() -> Iterator[str]:
    """A DNS server on loopback that answers NXDOMAIN to every query (UDP); a name starting
    with `alias-` is a CNAME to `gone-…`, which does not exist (as a recursive resolver
    answers for a dangling CNAME)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                data, peer = sock.recvfrom(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            query = dns.message.from_wire(data)
            reply = dns.message.make_response(query)
            reply.set_rcode(dns.rcode.NXDOMAIN)
            qname = query.question[0].name
            if qname.labels[0].startswith(b"alias-"):
                target = "gone-" + qname.to_text()[len("alias-") :]
                reply.answer.append(dns.rrset.from_text(qname, 60, "IN", "CNAME", target))
            sock.sendto(reply.to_wire(), peer)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{sock.getsockname()[1]}"
    finally:
        stop.set()
        thread.join(timeout=5)
        sock.close()


@pytest.fixture(scope="session")
def silent_server() -> Iterator[str]:
    """A UDP socket on loopback that reads queries and never answers: a DNS timeout."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    try:
        yield f"127.0.0.1:{sock.getsockname()[1]}"
    finally:
        sock.close()
