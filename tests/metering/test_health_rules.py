"""The health job's rules without Docker: when a verdict restarts, holds or waits, and what
counts as the edge answering (real sockets on loopback)."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

import pytest

from hosting.metering.health import HEALTHY, UNHEALTHY, UNKNOWN, RestartPolicy, next_state
from hosting.metering.probes import edge_probe

NOW = datetime(2026, 11, 29, 12, 0)
EARLIER = datetime(2026, 11, 29, 11, 50)
POLICY = RestartPolicy(after=3, limit=3, window_s=900)


@pytest.mark.parametrize(
    ("status", "failures", "held_at", "recent", "can_restart", "expected"),
    [
        (HEALTHY, 7, EARLIER, 3, True, (0, None, "")),  # healthy clears count and hold
        (UNKNOWN, 2, None, 0, True, (2, None, "")),  # no evidence either way
        (UNHEALTHY, 0, None, 0, True, (1, None, "")),
        (UNHEALTHY, 1, None, 0, True, (2, None, "")),
        (UNHEALTHY, 2, None, 0, True, (3, None, "restart")),  # the third failure in a row
        (UNHEALTHY, 2, None, 2, True, (3, None, "restart")),  # the third restart in the window
        (UNHEALTHY, 2, None, 3, True, (3, NOW, "hold")),  # a fourth would pass the cap
        (UNHEALTHY, 9, EARLIER, 0, True, (10, EARLIER, "")),  # held until healthy again
        (UNHEALTHY, 5, None, 0, False, (6, None, "")),  # nothing to restart (no container)
    ],
)
def test_next_state(
    status: str,
    failures: int,
    held_at: datetime | None,
    recent: int,
    can_restart: bool,
    expected: tuple[int, datetime | None, str],
) -> None:
    assert next_state(status, failures, held_at, recent, can_restart, POLICY, NOW) == expected


@contextmanager
def _server(reply: bytes | None) -> Iterator[int]:
    """A loopback TCP server that answers `reply` to each connection, or closes it unanswered."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    listener.settimeout(0.1)  # so the loop sees `stop`: close() does not wake accept()
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with conn:
                if reply is not None:
                    conn.recv(4096)
                    conn.sendall(reply)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield int(listener.getsockname()[1])
    finally:
        stop.set()
        thread.join(timeout=5)
        listener.close()


def test_any_http_answer_means_the_edge_is_up() -> None:
    with _server(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n") as port:
        probe = edge_probe(f"http://127.0.0.1:{port}", 3)
    assert (probe.status, probe.http_status) == (HEALTHY, 404)


def test_a_connection_closed_without_an_answer_is_no_edge() -> None:
    # What Docker's port proxy does when nothing listens inside the container.
    with _server(None) as port:
        probe = edge_probe(f"http://127.0.0.1:{port}", 3)
    assert probe.status == UNHEALTHY


def test_a_refused_connection_is_no_edge() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, never listening: refused
        probe = edge_probe(f"https://127.0.0.1:{port}", 3)
    assert probe.status == UNHEALTHY
    assert "refused" in probe.detail.lower()


def test_a_tls_alert_is_an_answer() -> None:
    # A TLS server with no certificate for a bare address answers with an alert.
    alert = bytes([0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x50])  # fatal internal_error
    with _server(alert) as port:
        probe = edge_probe(f"https://127.0.0.1:{port}", 3)
    assert probe.status == HEALTHY
    assert "TLS" in probe.detail
