"""The off-host copy against a real S3 API (moto's server mode on loopback): single and
multipart uploads arrive byte for byte, the sidecar after the dump; a missing bucket, an
unreachable endpoint and an unset secret are one-line errors that keep the local backup;
and a real backup run copies its encrypted dump (no plaintext row in the bucket)."""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hosting.backups import backup_one, files, offsite
from hosting.errors import ProviderError, SecretError
from hosting.spec import load, names
from hosting.spec.models import BackupS3
from tests.backups.test_docker_backups import Db, _start, _wait_final_server
from tests.metering.helpers import docker, remove, unique, write_spec

KEY_ENV = "HOSTING_TEST_S3_SECRET"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def s3_url() -> Iterator[str]:
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    try:
        while True:
            try:
                urllib.request.urlopen(url + "/moto-api/", timeout=2).close()
                break
            except OSError:
                assert proc.poll() is None, "moto's server exited"
                assert time.monotonic() < deadline, "moto's server did not answer"
                time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def _cfg(url: str, bucket: str, **extra: Any) -> BackupS3:
    return BackupS3.model_validate(
        {"endpoint": url, "bucket": bucket, "access_key_id": "AKIDTEST",
         "secret_access_key": {"env": KEY_ENV}, **extra}
    )  # fmt: skip


def _bucket(url: str, monkeypatch: pytest.MonkeyPatch) -> tuple[str, Any]:
    monkeypatch.setenv(KEY_ENV, "test-secret-" + secrets.token_hex(4))
    name = "bk-" + secrets.token_hex(4)
    client = offsite._client(_cfg(url, name), Path.cwd())
    client.create_bucket(Bucket=name)
    return name, client


def _fake_backup(state: Path, size: int) -> files.BackupFile:
    folder = files.deployment_dir(state, "acme", "db")
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "20260101T000000.000Z.dump"
    path.write_bytes(os.urandom(size))
    files.write_sidecar(path, {"size_bytes": size})
    return files.list_backups(state, "acme", "db")[0]


def _get(client: Any, bucket: str, key: str) -> bytes:
    return bytes(client.get_object(Bucket=bucket, Key=key)["Body"].read())


def test_single_and_multipart_uploads_arrive_whole(
    s3_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bucket, client = _bucket(s3_url, monkeypatch)
    small = _fake_backup(tmp_path / "a", 300_000)
    key = offsite.upload(_cfg(s3_url, bucket, prefix="nightly/"), tmp_path, small)
    assert key == "nightly/acme/db/20260101T000000.000Z.dump"
    assert _get(client, bucket, key) == small.path.read_bytes()
    sidecar = _get(client, bucket, key.replace(".dump", ".json"))
    assert json.loads(sidecar) == {"size_bytes": 300_000}

    big = _fake_backup(tmp_path / "b", 11 * 2**20 + 17)  # three parts of 5 MiB, the last short
    part = 5 * 2**20
    key = offsite.upload(_cfg(s3_url, bucket), tmp_path, big, part=part, multipart_over=part)
    assert _get(client, bucket, key) == big.path.read_bytes()
    head = client.head_object(Bucket=bucket, Key=key)
    assert head["ETag"].strip('"').endswith("-3")  # S3's mark of a three-part upload
    assert client.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []


def test_failures_are_one_line_and_keep_the_local_backup(
    s3_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(KEY_ENV, "whatever")
    made = _fake_backup(tmp_path, 1000)
    with pytest.raises(ProviderError, match="NoSuchBucket") as missing:
        offsite.upload(_cfg(s3_url, "no-such-bucket"), tmp_path, made)
    assert "\n" not in missing.value.message and "whatever" not in missing.value.message
    closed = f"http://127.0.0.1:{_free_port()}"
    with pytest.raises(ProviderError, match="Could not connect") as down:
        offsite.upload(_cfg(closed, "bucket"), tmp_path, made)
    assert down.value.hint is not None and "local backup is kept" in down.value.hint
    monkeypatch.delenv(KEY_ENV)
    with pytest.raises(SecretError, match=rf"\${KEY_ENV} is not set"):
        offsite.upload(_cfg(s3_url, "bucket"), tmp_path, made)
    assert made.path.is_file()


def test_the_endpoint_must_not_send_credentials_in_clear() -> None:
    with pytest.raises(ValueError, match="http:// on loopback only"):
        _cfg("http://backups.example.com", "bucket")
    assert _cfg("https://s3.example.com/", "bucket").endpoint == "https://s3.example.com"


@pytest.mark.docker
def test_a_backup_run_copies_the_encrypted_dump_off_host(
    docker_engine: str, s3_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bucket, client = _bucket(s3_url, monkeypatch)
    tenant = unique()
    # named as apply names it: backups find the database by its name as well as labels
    name, volume = names.container_name("mt", tenant, "main", 0), f"{tenant}_data"
    spec_file = write_spec(tmp_path, {tenant: {"main": {"type": "database"}}})
    text = spec_file.read_text().replace(
        "tenants:\n",
        f"  backups:\n    s3:\n      endpoint: {s3_url}\n      bucket: {bucket}\n"
        f"      access_key_id: AKIDTEST\n      secret_access_key: {{env: {KEY_ENV}}}\n"
        "tenants:\n",
        1,
    )
    spec_file.write_text(text)
    try:
        _start(tenant, name, volume, "Zq" + secrets.token_hex(8))
        db = Db(tenant, name, "", spec_file, tmp_path / "state", [])
        _wait_final_server(db)
        db.sql("CREATE TABLE t AS SELECT 'plaintext-row-' || g AS v FROM generate_series(1, 50) g")
        ran = db.cli("backup", "run", f"{tenant}/main", "--json")
        assert ran.returncode == 0, ran.stdout + ran.stderr
        outcome = json.loads(ran.stdout)["backups"][0]
        local = Path(outcome["file"]["path"])
        assert outcome["offsite"] == f"{tenant}/main/{local.name}"
        copied = _get(client, bucket, outcome["offsite"])
        assert copied == local.read_bytes() and b"plaintext-row-" not in copied

        # The bucket gone: the backup is still made and kept, the run says what failed.
        monkeypatch.setenv(KEY_ENV, "x")
        spec = load(spec_file)
        for item in client.list_objects_v2(Bucket=bucket)["Contents"]:
            client.delete_object(Bucket=bucket, Key=item["Key"])
        client.delete_bucket(Bucket=bucket)
        failed = backup_one(spec, tmp_path / "state", tenant, "main", spec_dir=tmp_path)
        assert not failed.ok and failed.file is not None and failed.file.path.is_file()
        assert failed.error is not None
        assert failed.error.startswith("backed up locally, not off-host: copying")
    finally:
        remove([name])
        docker("volume", "rm", "-f", volume, check=False)


def _pitr_state(state: Path) -> tuple[Path, Path]:
    """A database's base backup (+ sidecar), two sealed WAL files, one plain segment not
    sealed yet (+ its checksum), and hidden partials, laid out as pitr and wal_seal do."""
    base = files.deployment_dir(state, "acme", "db") / "base"
    wal = files.deployment_dir(state, "acme", "db") / "wal"
    base.mkdir(parents=True)
    wal.mkdir()
    made = base / "20261125T101500.000Z.base"
    made.write_bytes(b"HSTBKENC" + os.urandom(5000))
    files.write_sidecar(
        made,
        {"started": "2026-11-25T10:15:00Z", "finished": "2026-11-25T10:16:00Z",
         "first_wal": "000000010000000000000002"},
    )  # fmt: skip
    (base / ".20261126T101500.000Z.base.partial").write_bytes(b"half a base backup")
    for seg in ("000000010000000000000002", "00000002.history"):
        (wal / f"{seg}.gz.enc").write_bytes(b"HSTBKENC" + os.urandom(3000))
    (wal / "000000010000000000000003.gz").write_bytes(b"plain-wal-must-stay-home")
    (wal / "000000010000000000000003.gz.sha256").write_text("x  000000010000000000000003.gz\n")
    (wal / ".000000010000000000000004.77.partial").write_bytes(b"an archive run's")
    return base, wal


def test_base_backups_and_sealed_wal_are_copied_once_and_plain_wal_never(
    s3_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bucket, client = _bucket(s3_url, monkeypatch)
    cfg = _cfg(s3_url, bucket, prefix="pitr/")
    base, wal = _pitr_state(tmp_path)
    expected = [
        "pitr/acme/db/base/20261125T101500.000Z.base",
        "pitr/acme/db/base/20261125T101500.000Z.json",
        "pitr/acme/db/wal/000000010000000000000002.gz.enc",
        "pitr/acme/db/wal/00000002.history.gz.enc",
    ]
    sent = offsite.sync_pitr(cfg, tmp_path, tmp_path, "acme", "db")
    assert sent == expected  # a base backup before its sidecar
    listed = client.list_objects_v2(Bucket=bucket)["Contents"]
    assert sorted(item["Key"] for item in listed) == sorted(expected)
    for key in expected:
        local = (base if "/base/" in key else wal) / key.rsplit("/", 1)[1]
        assert _get(client, bucket, key) == local.read_bytes()
    assert b"plain-wal-must-stay-home" not in b"".join(_get(client, bucket, k) for k in expected)

    # Nothing new: nothing sent. A file whose copy differs in size, and a new one, are sent.
    assert offsite.sync_pitr(cfg, tmp_path, tmp_path, "acme", "db") == []
    (wal / "000000010000000000000002.gz.enc").write_bytes(b"HSTBKENC" + os.urandom(10))
    (wal / "000000010000000000000003.gz.enc").write_bytes(b"HSTBKENC" + os.urandom(10))
    assert offsite.sync_pitr(cfg, tmp_path, tmp_path, "acme", "db") == [
        "pitr/acme/db/wal/000000010000000000000002.gz.enc",
        "pitr/acme/db/wal/000000010000000000000003.gz.enc",
    ]
    # An unreachable store is one line naming it; the next run sends what is missing.
    closed = _cfg(f"http://127.0.0.1:{_free_port()}", bucket)
    (wal / "000000010000000000000004.gz.enc").write_bytes(b"HSTBKENC" + os.urandom(10))
    with pytest.raises(ProviderError, match="Could not connect"):
        offsite.sync_pitr(closed, tmp_path, tmp_path, "acme", "db")
    assert offsite.sync_pitr(cfg, tmp_path, tmp_path, "acme", "db") == [
        "pitr/acme/db/wal/000000010000000000000004.gz.enc"
    ]
