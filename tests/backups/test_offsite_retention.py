"""The plan's retention applied to the off-host copy, against a real S3 API (moto's server on
loopback, the offsite tests' fixture): what the window no longer needs goes from the bucket,
what a kept base backup needs stays, other databases' and other prefixes' objects are never
touched; `backup prune` and the agent's backup job do it."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from hosting.backups import offsite_retention as retention
from hosting.backups import pitr
from hosting.metering.agent import Agent, AgentConfig
from hosting.spec import load
from tests.backups.test_docker_pitr import Db, _base
from tests.backups.test_docker_pitr import db as db  # the real database, as apply makes it
from tests.backups.test_offsite import KEY_ENV, _bucket, _cfg
from tests.backups.test_offsite import s3_url as s3_url  # the moto fixture

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)  # 7 days: the window opens 11-23 12:00


def _base_sidecar(started: str, finished: str, first_wal: str) -> dict[str, Any]:
    return {"started": started, "finished": finished, "first_wal": first_wal}


# One database's folder in the bucket after weeks of copies with no retention.
BASES = {
    "20261110T020000.000Z": _base_sidecar(
        "2026-11-10T02:00:00Z", "2026-11-10T02:05:00Z", "000000010000000000000010"
    ),
    # the newest from before the window: it restores to the window's start
    "20261120T020000.000Z": _base_sidecar(
        "2026-11-20T02:00:00Z", "2026-11-20T02:05:00Z", "000000010000000000000020"
    ),
    "20261125T020000.000Z": _base_sidecar(
        "2026-11-25T02:00:00Z", "2026-11-25T02:05:00Z", "000000020000000000000030"
    ),
}
UNPLACED = ("20261105T000000.000Z", "20261128T000000.000Z")  # no sidecar in the bucket
SEGMENTS = (
    "00000001000000000000000F", "000000010000000000000010", "00000001000000000000001F",
    "00000002000000000000001A",  # a later timeline, but from before the floor's position
    "000000010000000000000020", "000000010000000000000021", "000000020000000000000030",
    "00000002.history",
)  # fmt: skip
DUMPS = ("20261110T015900.000Z", "20261120T015900.000Z", "20261121T015900.000Z",
         "20261129T015900.000Z")  # fmt: skip


def _keys() -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    for stamp, meta in BASES.items():
        out[f"base/{stamp}.base"] = b"HSTBKENC base " + stamp.encode()
        out[f"base/{stamp}.json"] = json.dumps(meta).encode()
    for stamp in UNPLACED:
        out[f"base/{stamp}.base"] = b"HSTBKENC unplaced"
    for seg in SEGMENTS:
        out[f"wal/{seg}.gz.enc"] = b"HSTBKENC wal"
    for stamp in DUMPS:
        out[f"{stamp}.dump"] = b"HSTBKENC dump"
        out[f"{stamp}.json"] = b"{}"
    return out


# Written out by hand from the rule, not computed by it.
GONE = [
    # sidecars first
    "base/20261110T020000.000Z.json", "20261110T015900.000Z.json", "20261120T015900.000Z.json",
    "base/20261105T000000.000Z.base", "base/20261110T020000.000Z.base",
    "20261110T015900.000Z.dump", "20261120T015900.000Z.dump",
    "wal/00000001000000000000000F.gz.enc", "wal/000000010000000000000010.gz.enc",
    "wal/00000001000000000000001F.gz.enc", "wal/00000002000000000000001A.gz.enc",
]  # fmt: skip


def test_what_the_window_needs_is_all_that_stays() -> None:
    keys = sorted(_keys())
    sidecars = {f"{s}.base": m for s, m in BASES.items()}
    sidecars.update({f"{s}.base": None for s in UNPLACED})
    doomed = retention.expired(keys, sidecars, 7, NOW)
    assert sorted(doomed) == sorted(GONE)
    sidecar_count = sum(k.endswith(".json") for k in doomed)
    assert all(k.endswith(".json") for k in doomed[:sidecar_count])  # sidecars before files
    # 30 days: every base backup stays; what is older than the oldest one still goes.
    assert sorted(retention.expired(keys, sidecars, 30, NOW)) == [
        "20261110T015900.000Z.dump", "20261110T015900.000Z.json",
        "base/20261105T000000.000Z.base", "wal/00000001000000000000000F.gz.enc",
    ]  # fmt: skip
    # A day: from the newest base backup before it on.
    one_day = retention.expired(keys, sidecars, 1, NOW)
    assert "base/20261120T020000.000Z.base" in one_day
    assert "base/20261125T020000.000Z.base" not in one_day
    assert "wal/000000020000000000000030.gz.enc" not in one_day
    assert "wal/00000002.history.gz.enc" not in one_day


def test_without_base_backups_dumps_keep_the_newest_from_before_the_window() -> None:
    keys = [f"{s}.{ext}" for s in DUMPS for ext in ("dump", "json")]
    assert retention.expired(keys, {}, 7, NOW) == [
        "20261110T015900.000Z.json", "20261120T015900.000Z.json",
        "20261110T015900.000Z.dump", "20261120T015900.000Z.dump",
    ]  # fmt: skip
    # (20261121 is the newest from before 11-23: it stays)
    assert retention.expired(keys[:2], {}, 7, NOW) == []  # one old dump: never the last one


def test_the_bucket_is_pruned_and_nothing_else_is_touched(
    s3_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bucket, client = _bucket(s3_url, monkeypatch)
    cfg = _cfg(s3_url, bucket, prefix="nightly/")
    for rel, body in _keys().items():
        client.put_object(Bucket=bucket, Key=f"nightly/acme/db/{rel}", Body=body)
        client.put_object(Bucket=bucket, Key=f"nightly/acme/other/{rel}", Body=body)
        client.put_object(Bucket=bucket, Key=f"elsewhere/acme/db/{rel}", Body=body)

    done = retention.prune_remote(cfg, tmp_path, "acme", "db", 7, NOW)
    assert sorted(done) == sorted(GONE)
    listed = [
        str(item["Key"])
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket)
        for item in page.get("Contents", [])
    ]
    mine = sorted(k[len("nightly/acme/db/") :] for k in listed if k.startswith("nightly/acme/db/"))
    assert mine == sorted(set(_keys()) - set(GONE))
    assert sum(k.startswith("nightly/acme/other/") for k in listed) == len(_keys())
    assert sum(k.startswith("elsewhere/") for k in listed) == len(_keys())
    assert retention.prune_remote(cfg, tmp_path, "acme", "db", 7, NOW) == []  # idempotent


def _with_s3(db: Db, url: str, bucket: str) -> None:
    db.spec_file.write_text(
        db.spec_file.read_text().replace(
            "tenants:\n",
            f"  backups:\n    s3:\n      endpoint: {url}\n      bucket: {bucket}\n"
            f"      access_key_id: AKIDTEST\n      secret_access_key: {{env: {KEY_ENV}}}\n"
            "tenants:\n",
            1,
        )
    )


OLD_WAL, ANCHOR_WAL = "000000010000000000000000", "000000010000000000000001"


def _old_copies(client: Any, bucket: str, db: Db) -> list[str]:
    """Copies from months ago, as a bucket without retention holds them; returns the keys
    the window no longer needs (all but the newest base backup from before it)."""
    root = f"{db.tenant}/main/"
    old = {
        "base/20260901T020000.000Z.base": b"HSTBKENC old base",
        "base/20260901T020000.000Z.json": json.dumps(
            _base_sidecar("2026-09-01T02:00:00Z", "2026-09-01T02:05:00Z", OLD_WAL)
        ).encode(),
        f"wal/{OLD_WAL}.gz.enc": b"HSTBKENC old wal",
        "20260901T015900.000Z.dump": b"HSTBKENC old dump",
        "20260901T015900.000Z.json": b"{}",
    }
    anchor = {  # the newest from before the window: it stays
        "base/20261001T020000.000Z.base": b"HSTBKENC anchor base",
        "base/20261001T020000.000Z.json": json.dumps(
            _base_sidecar("2026-10-01T02:00:00Z", "2026-10-01T02:05:00Z", ANCHOR_WAL)
        ).encode(),
    }
    for rel, body in {**old, **anchor}.items():
        client.put_object(Bucket=bucket, Key=root + rel, Body=body)
    return sorted(root + k for k in old)


@pytest.mark.docker
def test_backup_prune_and_the_agent_apply_the_window_off_host(
    db: Db, s3_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bucket, client = _bucket(s3_url, monkeypatch)
    _with_s3(db, s3_url, bucket)

    def listed() -> list[str]:
        return sorted(str(i["Key"]) for i in client.list_objects_v2(Bucket=bucket)["Contents"])

    db.write("a", 5)
    made = _base(db)  # copied off-host by `backup base`
    old = _old_copies(client, bucket, db)
    pruned = db.cli("backup", "prune", f"{db.tenant}/main", "--yes")
    assert pruned.returncode == 0, pruned.stdout + pruned.stderr
    now = listed()
    assert not set(old) & set(now), sorted(set(old) & set(now))
    assert "5 off-host" in pruned.stdout, pruned.stdout
    assert f"{db.tenant}/main/base/{made}" in now
    assert f"{db.tenant}/main/base/20261001T020000.000Z.base" in now
    [kept] = pitr.list_bases(db.state, db.tenant, "main")
    assert f"{db.tenant}/main/wal/{kept.first_wal}.gz.enc" in now  # what the kept one needs

    old = _old_copies(client, bucket, db)
    agent = Agent(
        load(db.spec_file), db.state / "hosting.duckdb", spec_dir=db.spec_file.parent,
        config=AgentConfig(), log_file=tmp_path / "agent.log",
    )  # fmt: skip
    outcome = agent.run_job("backups")
    assert outcome.ok and outcome.summary["failed"] == {}, outcome.summary
    assert outcome.summary["offsite_pruned"] == 5
    after = listed()
    assert not set(old) & set(after)
    assert f"{db.tenant}/main/base/{made}" in after  # inside the 7 days
