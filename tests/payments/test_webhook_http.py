"""The webhook endpoint's HTTP edges, in process: what it answers before any event is read."""

from __future__ import annotations

import http.client
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from hosting.payments import webhook


@pytest.fixture
def endpoint(tmp_path: Path) -> Iterator[tuple[int, list[webhook.Outcome]]]:
    seen: list[webhook.Outcome] = []
    server = webhook.make_server(
        "127.0.0.1", 0, tmp_path / "hosting.duckdb", "whsec_http_test", seen.append
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield int(server.server_address[1]), seen
    finally:
        server.shutdown()
        server.server_close()


def request(port: int, method: str, body: bytes = b"", **headers: str) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.putrequest(method, "/")
    for k, v in headers.items():
        conn.putheader(k.replace("_", "-"), v)
    conn.endheaders()
    if body:
        conn.send(body)
    resp = conn.getresponse()
    out = resp.status, resp.read()
    conn.close()
    return out


def test_get_is_refused(endpoint: tuple[int, list[webhook.Outcome]]) -> None:
    port, seen = endpoint
    assert request(port, "GET")[0] == 405
    assert seen == []


def test_an_unsigned_body_is_400_and_the_store_is_not_even_created(
    endpoint: tuple[int, list[webhook.Outcome]], tmp_path: Path
) -> None:
    port, seen = endpoint
    body = b'{"id": "evt_1", "type": "payment_intent.succeeded"}'
    status, _ = request(port, "POST", body, Content_Length=str(len(body)))
    assert status == 400
    assert [o.outcome for o in seen] == ["rejected: bad signature"]
    assert not (tmp_path / "hosting.duckdb").exists()


@pytest.mark.parametrize(("length", "status"), [("2000000", 413), ("-5", 400), ("x", 400)])
def test_a_bad_content_length_is_refused_unread(
    endpoint: tuple[int, list[webhook.Outcome]], length: str, status: int
) -> None:
    port, seen = endpoint
    assert request(port, "POST", Content_Length=length)[0] == status
    assert seen == []
