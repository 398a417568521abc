"""The plan's retention (`backup_retention_days`) applied to the off-host copy
(`platform.backups.s3`), which otherwise only grows.

The bucket is judged by what it holds, not by the local folder: a base backup is placed in
time by its sidecar in the bucket, and the rule is the local one (pitr.retention): every
base backup that finished inside the window, the newest one from before it, and every WAL
segment from the oldest kept one's first segment on. Dumps (self-contained) started before
the oldest kept base backup go too; without any base backup in the bucket, a dump goes when
it is from before the window and a newer dump from before it is kept (the newest from before
the window stays, as for base backups). A base backup whose sidecar is missing or unreadable
cannot be placed: it stays unless it is older (by its name's stamp) than the oldest kept one.
Timeline histories are kept (a few bytes each, and a restore follows them).

Sidecars are deleted before their files, so a listing that shows a sidecar still shows a
complete backup, as uploads (file first, sidecar last) guarantee.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from hosting.backups import files, pitr
from hosting.errors import ProviderError
from hosting.spec.models import BackupS3

SEALED = pitr.SEALED


@dataclass(frozen=True)
class RemoteBase:
    name: str  # <stamp>.base
    started: datetime
    finished: datetime
    first_wal: str


STAMP = re.compile(r"^(\d{8}T\d{6})\.(\d{3})Z\.")


def stamp_time(name: str) -> datetime | None:
    """The UTC start a backup's name carries (files.stamp), aware; None if it has none."""
    found = STAMP.match(name)
    if found is None:
        return None
    try:
        moment = datetime.strptime(f"{found[1]}.{found[2]}", "%Y%m%dT%H%M%S.%f")
    except ValueError:
        return None
    return moment.replace(tzinfo=UTC)


def placed(name: str, sidecar: dict[str, Any] | None) -> RemoteBase | None:
    """A base backup in time, from its sidecar; None when the sidecar cannot place it."""
    if not sidecar:
        return None
    try:
        return RemoteBase(
            name, pitr._aware(sidecar["started"]), pitr._aware(sidecar["finished"]),
            str(sidecar["first_wal"]),
        )  # fmt: skip
    except (KeyError, ValueError, TypeError):
        return None


def expired(
    keys: list[str], sidecars: dict[str, dict[str, Any] | None], days: int, now: datetime
) -> list[str]:
    """Of one database's keys (relative to its folder: `<f>.dump`, `<f>.json`,
    `base/<f>.base`, `base/<f>.json`, `wal/<segment>.gz.enc`), those the window no longer
    needs, sidecars first. `sidecars`: base backup name -> its sidecar's fields (None:
    missing or unreadable). Pure."""
    present = set(keys)
    base_names = sorted(
        k.split("/", 1)[1] for k in present
        if k.startswith(pitr.BASE_DIR + "/") and k.endswith(pitr.BASE_SUFFIX)
    )  # fmt: skip
    bases = [b for n in base_names if (b := placed(n, sidecars.get(n))) is not None]
    segments = [
        k.split("/", 1)[1][: -len(SEALED)] for k in present
        if k.startswith(pitr.WAL_DIR + "/") and k.endswith(SEALED)
    ]  # fmt: skip
    drop_bases, drop_wal = pitr.retention(bases, segments, days, now)
    kept = [b for b in bases if b not in drop_bases]
    floor = min((b.started for b in kept), default=None)  # the oldest kept base backup
    gone = {b.name for b in drop_bases}
    if floor is not None:  # unplaced base backups older than every kept one
        gone |= {
            n for n in base_names
            if n not in {b.name for b in bases} and (t := stamp_time(n)) is not None and t < floor
        }  # fmt: skip
    dumps = sorted(
        (t, k) for k in present
        if "/" not in k and k.endswith(files.SUFFIX) and (t := stamp_time(k)) is not None
    )  # fmt: skip
    if floor is None:  # no base backup: the newest dump from before the window is the floor
        before = [t for t, _ in dumps if t < now - timedelta(days=days)]
        floor = max(before, default=None)
    old_dumps = [k for t, k in dumps if floor is not None and t < floor]
    sidecar_keys, data_keys = [], []
    for name in sorted(gone):
        sidecar_keys.append(f"{pitr.BASE_DIR}/{Path(name).with_suffix(files.SIDECAR)}")
        data_keys.append(f"{pitr.BASE_DIR}/{name}")
    for key in old_dumps:
        sidecar_keys.append(str(Path(key).with_suffix(files.SIDECAR)))
        data_keys.append(key)
    data_keys += [f"{pitr.WAL_DIR}/{seg}{SEALED}" for seg in drop_wal]
    return [k for k in sidecar_keys if k in present] + data_keys


def prune_remote(
    cfg: BackupS3, base_dir: Path, tenant: str, deployment: str, days: int,
    now: datetime | None = None,
) -> list[str]:  # fmt: skip
    """Delete what the window no longer needs from the bucket's copy of one database;
    returns the keys deleted. Raises ProviderError with the store's one-line answer."""
    from hosting.backups import offsite

    now = now or datetime.now(UTC)
    client = offsite._client(cfg, base_dir)
    root = f"{cfg.prefix}{tenant}/{deployment}/"
    keys: list[str] = []
    with offsite._reported(cfg, f"the off-host retention of {tenant}/{deployment}"):
        for page in client.get_paginator("list_objects_v2").paginate(
            Bucket=cfg.bucket, Prefix=root
        ):
            keys += [str(item["Key"])[len(root) :] for item in page.get("Contents", [])]
        sidecars: dict[str, dict[str, Any] | None] = {}
        for key in keys:
            if key.startswith(pitr.BASE_DIR + "/") and key.endswith(pitr.BASE_SUFFIX):
                name = key.split("/", 1)[1]
                sidecars[name] = _sidecar(client, cfg.bucket, root, key, keys)
        doomed = expired(keys, sidecars, days, now)
        sidecar_keys = [k for k in doomed if k.endswith(files.SIDECAR)]
        # Every sidecar gone before any file it describes.
        for phase in (sidecar_keys, [k for k in doomed if not k.endswith(files.SIDECAR)]):
            for i in range(0, len(phase), 1000):  # DeleteObjects takes up to 1000 keys
                _delete(client, cfg, [root + k for k in phase[i : i + 1000]])
    return doomed


def _delete(client: Any, cfg: BackupS3, keys: list[str]) -> None:
    done = client.delete_objects(
        Bucket=cfg.bucket, Delete={"Objects": [{"Key": k} for k in keys], "Quiet": True}
    )
    errors = done.get("Errors") or []
    if errors:
        first = errors[0]
        raise ProviderError(
            f"the s3 bucket {cfg.bucket} at {cfg.endpoint} did not delete"
            f" {first.get('Key', '?')}: {first.get('Code', 'error')}",
            "check the credentials' delete permission; the next run tries again",
        )


def _sidecar(
    client: Any, bucket: str, root: str, key: str, keys: list[str]
) -> dict[str, Any] | None:
    side = str(Path(key).with_suffix(files.SIDECAR))
    if side not in keys:
        return None
    body = client.get_object(Bucket=bucket, Key=root + side)["Body"].read()
    try:
        loaded = json.loads(body)
    except ValueError:
        return None
    return loaded if isinstance(loaded, dict) else None
