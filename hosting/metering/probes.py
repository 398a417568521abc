"""The health job's HTTP probes: an app at its own address, a route through the edge with the
deployment's Host (and SNI), and whether the edge itself answers at all."""

from __future__ import annotations

import http.client
import socket
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlparse

HEALTHY, UNHEALTHY, UNKNOWN = "healthy", "unhealthy", "unknown"


@dataclass(frozen=True)
class Probe:
    status: str
    detail: str
    http_status: int | None = None
    latency_ms: float | None = None


def _unverified() -> ssl.SSLContext:
    # The probes ask whether something answers; a local edge may use its internal CA.
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


class _SniConnection(http.client.HTTPSConnection):
    """HTTPS to the edge's address with the deployment's name as SNI: the edge picks the
    site's certificate by it."""

    def __init__(self, address: str, port: int, server_name: str, timeout: float) -> None:
        context = _unverified()
        super().__init__(address, port, timeout=timeout, context=context)
        self._server_name = server_name
        self._context = context

    def connect(self) -> None:
        sock = socket.create_connection((self.host, self.port), self.timeout)
        try:
            self.sock = self._context.wrap_socket(sock, server_hostname=self._server_name)
        except OSError:
            sock.close()
            raise


def http_probe(base_url: str, host: str, path: str, timeout: float) -> Probe:
    """GET path at base_url with Host: host; any answer below 400 is healthy.

    For a route through the edge, give an https:// URL when the edge serves HTTPS: over
    plain HTTP it answers every site with a redirect, which says nothing about the app.
    """
    url = urlparse(base_url)
    address = url.hostname or "127.0.0.1"
    conn: http.client.HTTPConnection
    if url.scheme == "https":
        conn = _SniConnection(address, url.port or 443, host, timeout)
    else:
        conn = http.client.HTTPConnection(address, url.port or 80, timeout=timeout)
    started = time.monotonic()
    try:
        conn.request("GET", path, headers={"Host": host, "User-Agent": "hosting-health/1"})
        resp = conn.getresponse()
        resp.read(65536)
    except (OSError, http.client.HTTPException) as exc:
        return Probe(UNHEALTHY, f"GET {path}: {exc or type(exc).__name__}")
    finally:
        conn.close()
    latency = round((time.monotonic() - started) * 1000, 3)
    ok = resp.status < 400
    detail = f"GET {path}: HTTP {resp.status}"
    return Probe(HEALTHY if ok else UNHEALTHY, detail, resp.status, latency)


def edge_probe(edge_url: str, timeout: float) -> Probe:
    """Whether the edge answers at all, whatever it says: any HTTP response, and over TLS a
    TLS alert too (no certificate for a bare address is still an answer).

    A refused or reset connection, a timeout, or one closed without a word (Docker's port
    proxy accepts, then closes when nothing listens in the container) is no answer.
    """
    url = urlparse(edge_url)
    address = url.hostname or "127.0.0.1"
    conn: http.client.HTTPConnection
    if url.scheme == "https":
        conn = http.client.HTTPSConnection(
            address, url.port or 443, timeout=timeout, context=_unverified()
        )
    else:
        conn = http.client.HTTPConnection(address, url.port or 80, timeout=timeout)
    started = time.monotonic()
    try:
        conn.request("HEAD", "/", headers={"User-Agent": "hosting-health/1"})
        resp = conn.getresponse()
    except (ssl.SSLEOFError, ssl.SSLZeroReturnError):
        return Probe(UNHEALTHY, f"{edge_url}: the connection closed without an answer")
    except ssl.SSLError as exc:
        return Probe(HEALTHY, f"{edge_url} answers (TLS: {exc.reason or exc})")
    except (OSError, http.client.HTTPException) as exc:
        return Probe(UNHEALTHY, f"{edge_url}: {exc or type(exc).__name__}")
    finally:
        conn.close()
    latency = round((time.monotonic() - started) * 1000, 3)
    return Probe(HEALTHY, f"{edge_url} answers: HTTP {resp.status}", resp.status, latency)


ProbeFn = Callable[[str, str, str, float], Probe]
EdgeProbeFn = Callable[[str, float], Probe]
