"""Read replicas: streaming hot standbys of a tenant's database (issue 12).

Each replica has its own volume and clones the primary on its first start (`pg_basebackup`
over the tenant network as the `replicator` role), then follows it through a physical
replication slot, so the primary keeps the WAL a replica has not received yet. The standby's
settings name no password: the walreceiver's libpq reads it from PGPASSWORD in the container's
environment (a Pulumi secret), so it sits in no file of the replica's data directory.

After every apply the primary is prepared (`prepare_primary`): the replication line in
pg_hba.conf, the role with its generated password (as a SCRAM verifier), a slot per declared
replica, and no slot left behind for replicas removed, since an abandoned slot would keep WAL
forever.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from hosting.databases.local import run_shell, run_sql
from hosting.databases.roles import ident, literal
from hosting.databases.scram import verifier
from hosting.errors import ProviderError

REPLICATION_ROLE = "replicator"
SLOT_PREFIX = "replica_"
HBA_LINE = f"host replication {REPLICATION_ROLE} all scram-sha-256"

# Runs as the image's postgres user (re-executed as it where the image starts as root, as the
# upstream image does). A half-made copy is never started: it is cloned beside PGDATA and
# moved into place only once complete.
STANDBY_SCRIPT = r"""
set -eu
if [ "$(id -u)" = 0 ]; then
  mkdir -p "$(dirname "$PGDATA")" && chown postgres "$(dirname "$PGDATA")"
  for t in su-exec gosu; do
    if command -v "$t" >/dev/null; then exec "$t" postgres sh -c 'eval "$HOSTING_STANDBY"'; fi
  done
  echo "the standby cannot drop root: no su-exec or gosu in the image" >&2; exit 1
fi
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  part="$PGDATA.partial"
  while :; do
    rm -rf "$part"
    if pg_basebackup -h "$HOSTING_PRIMARY" -U "$HOSTING_REPLICATION_USER" -D "$part" \
        -X stream -S "$HOSTING_SLOT" -w; then break; fi
    echo "waiting for the primary $HOSTING_PRIMARY to accept replication" >&2
    sleep 2
  done
  touch "$part/standby.signal"
  printf "primary_conninfo = 'host=%s user=%s application_name=%s'\nprimary_slot_name = '%s'\n" \
    "$HOSTING_PRIMARY" "$HOSTING_REPLICATION_USER" "$HOSTING_SLOT" "$HOSTING_SLOT" \
    >> "$part/postgresql.auto.conf"
  mv "$part" "$PGDATA"
fi
exec postgres -D "$PGDATA" -c listen_addresses='*' -c unix_socket_directories=/tmp
"""
# The container's command: the script travels in the environment so that the root branch
# can run it again as postgres.
STANDBY_COMMAND = ("-c", 'eval "$HOSTING_STANDBY"')


def slot_name(index: int) -> str:
    return f"{SLOT_PREFIX}{index}"


def read_alias(platform: str, tenant: str, deployment: str) -> str:
    """The name every replica of a database answers to on its tenant's network."""
    return f"{platform}_{tenant}_{deployment}_read"


def replica_volume_dir(deployment: str, index: int) -> str:
    """A replica's directory in its tenant's bounded filesystem; not a valid deployment name,
    so it never meets one."""
    return f"{deployment}.replica{index}"


def _wanted(replicas: int) -> str:
    """The declared slots as a text[] (never NULL inside: `NOT IN` a list holding NULL is
    never true, which would keep every stale slot)."""
    return "ARRAY[" + ", ".join(literal(slot_name(i)) for i in range(1, replicas + 1)) + "]::text[]"


def prepare_primary_sql(password: str, replicas: int) -> str:
    role = ident(REPLICATION_ROLE)
    return (
        "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = "
        f"{literal(REPLICATION_ROLE)}) THEN CREATE ROLE {role} REPLICATION LOGIN; END IF; END $$;\n"
        f"ALTER ROLE {role} PASSWORD {literal(verifier(password))};\n"
        "SELECT count(pg_create_physical_replication_slot(s))"
        f" FROM unnest({_wanted(replicas)}) AS s"
        " WHERE s NOT IN (SELECT slot_name FROM pg_replication_slots);\n"
    )


def drop_slots_sql(replicas: int) -> str:
    """Drop the slots of replicas no longer declared; a slot still held by a walsender (its
    replica just removed) has that session ended and is dropped on a later try. Prints how
    many such slots were left."""
    stale = (
        f"slot_name LIKE {literal(SLOT_PREFIX + '%')} AND slot_name <> ALL ({_wanted(replicas)})"
    )
    return (
        f"SELECT count(pg_drop_replication_slot(slot_name)) FROM pg_replication_slots"
        f" WHERE {stale} AND NOT active;\n"
        f"SELECT count(pg_terminate_backend(active_pid)) FROM pg_replication_slots"
        f" WHERE {stale} AND active;\n"
        f"SELECT count(*) FROM pg_replication_slots WHERE {stale};\n"
    )


# Appends the replication line once, then reloads: pg_hba.conf is not reachable from SQL.
HBA_SCRIPT = (
    'f="$PGDATA/pg_hba.conf"; grep -qxF "$1" "$f" || printf "%s\\n" "$1" >> "$f"; '
    'pg_ctl reload -D "$PGDATA" >/dev/null 2>&1 || kill -HUP 1'
)


# A slot whose replica stopped following (one promoted, or down for long) keeps WAL on the
# primary: at most this much, then the replica has to be cloned again, but the primary's
# storage does not fill.
MAX_SLOT_WAL = "1GB"
LIMIT_SLOTS_SQL = (
    f"ALTER SYSTEM SET max_slot_wal_keep_size = {literal(MAX_SLOT_WAL)};\n"
    "SELECT pg_reload_conf();\n"
)


def prepare_primary(
    docker_host: str, container: str, owner: str, dbname: str, password: str, replicas: int
) -> None:
    run_shell(docker_host, container, HBA_SCRIPT, HBA_LINE)
    run_sql(docker_host, container, owner, dbname, prepare_primary_sql(password, replicas))
    run_sql(docker_host, container, owner, dbname, LIMIT_SLOTS_SQL, one_transaction=False)
    for _ in range(20):  # a removed replica's walsender ends within moments of being told
        out = run_sql(docker_host, container, owner, dbname, drop_slots_sql(replicas))
        if out.split()[-1:] == ["0"]:
            return
        time.sleep(0.5)
    raise ProviderError("a removed read replica's slot is still in use on the primary")


PROMOTE_SQL = "SELECT pg_promote(wait => true, wait_seconds => 60)"


@dataclass(frozen=True)
class ReplicaState:
    name: str  # the slot's name, replica_N
    streaming: bool
    lag_bytes: int | None  # WAL the replica has not replayed yet
    lag_s: float | None  # how far behind its replay is, as the primary measures it


LAG_SQL = (
    "SELECT s.slot_name, coalesce(r.state, 'down'),"
    " pg_wal_lsn_diff(pg_current_wal_lsn(), coalesce(r.replay_lsn, s.restart_lsn))::bigint,"
    " extract(epoch FROM r.replay_lag)"
    " FROM pg_replication_slots s LEFT JOIN pg_stat_replication r ON r.pid = s.active_pid"
    f" WHERE s.slot_name LIKE '{SLOT_PREFIX}%' ORDER BY s.slot_name"
)


def replica_states(docker_host: str, container: str, owner: str, dbname: str) -> list[ReplicaState]:
    """Each replica's slot on the primary: streaming or not, and its lag."""
    out = []
    for line in run_sql(docker_host, container, owner, dbname, LAG_SQL).splitlines():
        if not line.strip():
            continue
        slot, state, lag_bytes, lag_s = line.split("|")
        out.append(
            ReplicaState(
                slot,
                state == "streaming",
                int(lag_bytes) if lag_bytes else None,
                float(lag_s) if lag_s else (0.0 if state == "streaming" else None),
            )
        )
    return out
