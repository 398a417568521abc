"""The off-host copy: each new backup (already encrypted) and its sidecar uploaded to an
S3-compatible bucket (`platform.backups.s3`), through botocore's S3 client (its SigV4 signing,
retries and multipart calls; not boto3, whose extra layer nothing here needs).

Keys: <prefix><tenant>/<deployment>/<file>. The dump goes first, the sidecar last, so a
listing that shows the sidecar shows a complete dump. Files over MULTIPART bytes go up in
PART-byte parts (never more than one part in memory); an upload that fails is aborted, so no
half-written object is left behind, and the local backup stays as it is.

Point-in-time recovery's files follow with `sync_pitr`: base backups (then their sidecars)
as <…>/base/<file> and sealed WAL as <…>/wal/<segment>.gz.enc, each uploaded when the bucket
has no object of that key and size (one listing per database), so a run that failed half-way
is finished by the next. Plain WAL (not sealed yet) never leaves the host.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from hosting.backups import files
from hosting.errors import ProviderError
from hosting.secret_refs import read_secret
from hosting.spec.models import BackupS3

PART = 16 * 2**20
MULTIPART = 64 * 2**20


def _client(cfg: BackupS3, base_dir: Path) -> Any:
    import botocore.session
    from botocore.config import Config

    secret = read_secret(
        cfg.secret_access_key, "platform.backups.s3.secret_access_key", base_dir,
        when="before backing up",
    )  # fmt: skip
    session = botocore.session.get_session()
    return session.create_client(
        "s3",
        endpoint_url=cfg.endpoint,
        region_name=cfg.region,
        aws_access_key_id=cfg.access_key_id,
        aws_secret_access_key=secret,
        config=Config(
            s3={"addressing_style": "path"},
            retries={"max_attempts": 3, "mode": "standard"},
            connect_timeout=10,
            read_timeout=120,
        ),
    )


def key_of(cfg: BackupS3, backup: files.BackupFile, name: str | None = None) -> str:
    return f"{cfg.prefix}{backup.tenant}/{backup.deployment}/{name or backup.name}"


def upload(
    cfg: BackupS3, base_dir: Path, backup: files.BackupFile, *, part: int = PART,
    multipart_over: int = MULTIPART,
) -> str:  # fmt: skip
    """Copy the backup and its sidecar; returns the dump's key. Raises ProviderError with
    the store's one-line answer (never a credential)."""
    client = _client(cfg, base_dir)
    key = key_of(cfg, backup)
    with _reported(cfg, backup.name):
        _put(client, cfg, key, backup.path, part, multipart_over)
        sidecar = backup.path.with_suffix(files.SIDECAR)
        if sidecar.is_file():
            client.put_object(
                Bucket=cfg.bucket, Key=key_of(cfg, backup, sidecar.name),
                Body=sidecar.read_bytes(), ContentType="application/json",
            )  # fmt: skip
    return key


@contextlib.contextmanager
def _reported(cfg: BackupS3, name: str) -> Iterator[None]:
    """The store's errors as one-line ProviderErrors (never a credential)."""
    from botocore.exceptions import BotoCoreError, ClientError

    where = f"s3 bucket {cfg.bucket} at {cfg.endpoint}"
    try:
        yield
    except ClientError as exc:
        error = exc.response.get("Error", {})
        raise ProviderError(
            f"copying {name} to the {where} failed: "
            f"{error.get('Code', 'error')}: {error.get('Message', '')}".rstrip(": "),
            "check platform.backups.s3 (bucket, credentials); the local backup is kept",
        ) from None
    except BotoCoreError as exc:
        raise ProviderError(
            f"copying {name} to the {where} failed: {exc}",
            "is the endpoint reachable? the local backup is kept",
        ) from None


def _put(client: Any, cfg: BackupS3, key: str, path: Path, part: int, multipart_over: int) -> None:
    size = path.stat().st_size
    if size > multipart_over:
        _multipart(client, cfg.bucket, key, path, part)
    else:
        with path.open("rb") as fh:
            client.put_object(Bucket=cfg.bucket, Key=key, Body=fh)
    head = client.head_object(Bucket=cfg.bucket, Key=key)
    if int(head["ContentLength"]) != size:
        raise ProviderError(
            f"the copy of {path.name} in s3 bucket {cfg.bucket} at {cfg.endpoint}"
            " has the wrong size"
        )


def _pitr_files(state_dir: Path, tenant: str, deployment: str) -> list[tuple[Path, str]]:
    """(local file, key below the deployment's) of every base backup, its sidecar after it,
    and every sealed WAL file, oldest first."""
    from hosting.backups import pitr, wal_seal

    out = []
    for b in pitr.list_bases(state_dir, tenant, deployment):  # complete ones only
        sidecar = b.path.with_suffix(files.SIDECAR)
        out += [(b.path, f"{pitr.BASE_DIR}/{b.name}"), (sidecar, f"{pitr.BASE_DIR}/{sidecar.name}")]
    wal = pitr.archive_dir(state_dir, tenant, deployment)
    for sealed in sorted(wal.glob("*" + wal_seal.SEALED)) if wal.is_dir() else []:
        if not sealed.name.startswith(".") and sealed.is_file():
            out.append((sealed, f"{pitr.WAL_DIR}/{sealed.name}"))
    return out


def sync_pitr(
    cfg: BackupS3, base_dir: Path, state_dir: Path, tenant: str, deployment: str, *,
    part: int = PART, multipart_over: int = MULTIPART,
) -> list[str]:  # fmt: skip
    """Upload the base backups and sealed WAL of one database the bucket lacks (by key and
    size); returns the keys uploaded. Raises ProviderError as `upload` does."""
    todo = _pitr_files(state_dir, tenant, deployment)
    if not todo:
        return []
    client = _client(cfg, base_dir)
    root = f"{cfg.prefix}{tenant}/{deployment}/"
    present: dict[str, int] = {}
    with _reported(cfg, f"the point-in-time files of {tenant}/{deployment}"):
        for page in client.get_paginator("list_objects_v2").paginate(
            Bucket=cfg.bucket, Prefix=root
        ):
            for item in page.get("Contents", []):
                present[str(item["Key"])] = int(item["Size"])
    sent = []
    for path, rel in todo:
        try:
            size = path.stat().st_size
        except FileNotFoundError:  # pruned since it was listed
            continue
        key = root + rel
        if present.get(key) == size:
            continue
        with _reported(cfg, path.name):
            _put(client, cfg, key, path, part, multipart_over)
        sent.append(key)
    return sent


def _multipart(client: Any, bucket: str, key: str, path: Path, part: int) -> None:
    started = client.create_multipart_upload(Bucket=bucket, Key=key)
    upload_id = started["UploadId"]
    try:
        parts = []
        with path.open("rb") as fh:
            number = 1
            while chunk := fh.read(part):
                sent = client.upload_part(
                    Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=chunk
                )
                parts.append({"ETag": sent["ETag"], "PartNumber": number})
                number += 1
        client.complete_multipart_upload(
            Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts}
        )
    except BaseException:
        with contextlib.suppress(Exception):  # the first error is the one to report
            client.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
        raise
