"""stripe-mock (Stripe's own API mock, built by .ci/run from the Go module proxy and started
on loopback by .ci/services.sh), and a recording proxy in front of it.

stripe-mock is stateless: it answers every valid request as Stripe would, but keeps nothing
and does not replay idempotency keys. What the tests must see, how many objects hosting asked
Stripe to create and with which idempotency keys, they read from the proxy, which forwards
every request to stripe-mock unchanged and notes method, path and key.
"""

from __future__ import annotations

import http.client
import os
import threading
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import pytest

from tests.conftest import require

STRIPE_MOCK_URL = os.environ.get("HOSTING_STRIPE_MOCK_URL", "http://127.0.0.1:12111")


def _answers(url: str) -> bool:
    # Any answer is life (stripe-mock answers 401 without a key); a refused connection is not.
    try:
        urllib.request.urlopen(f"{url}/v1/customers", timeout=3)
    except urllib.error.HTTPError:
        return True
    except OSError:
        return False
    return True


@pytest.fixture(scope="session")
def stripe_mock() -> str:
    require(_answers(STRIPE_MOCK_URL), f"stripe-mock on {STRIPE_MOCK_URL} (.ci/services.sh)")
    return STRIPE_MOCK_URL


@dataclass
class Recorder:
    url: str
    # method, path, idempotency key, form body
    calls: list[tuple[str, str, str | None, str]] = field(default_factory=list)

    def posts(self, path: str) -> list[str | None]:
        """Idempotency keys of the POSTs to exactly `path`."""
        return [key for m, p, key, _ in self.calls if m == "POST" and p == path]

    def bodies(self, path: str) -> list[dict[str, list[str]]]:
        return [parse_qs(body) for m, p, _, body in self.calls if m == "POST" and p == path]


@pytest.fixture
def stripe_proxy(stripe_mock: str) -> Iterator[Recorder]:
    upstream = urlparse(stripe_mock)
    calls: list[tuple[str, str, str | None, str]] = []

    class Forward(BaseHTTPRequestHandler):
        def _forward(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            path, key = self.path.split("?")[0], self.headers.get("Idempotency-Key")
            calls.append((self.command, path, key, body.decode()))
            conn = http.client.HTTPConnection(upstream.hostname, upstream.port, timeout=30)
            headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
            conn.request(self.command, self.path, body=body or None, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
            self.send_response(resp.status)
            for k, v in resp.getheaders():
                if k.lower() not in ("transfer-encoding", "connection", "content-length"):
                    self.send_header(k, v)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            conn.close()

        do_GET = do_POST = do_DELETE = _forward

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Forward)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Recorder(f"http://127.0.0.1:{server.server_address[1]}", calls)
    finally:
        server.shutdown()
        server.server_close()
