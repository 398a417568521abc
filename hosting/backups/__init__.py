"""PostgreSQL backups of `type: database` deployments: `pg_dump -Fc` run inside the running
container, encrypted as it streams (crypto) to STATE_DIR/backups/<tenant>/<deployment>/<UTC
stamp>.dump with a JSON sidecar (row counts from the dump's snapshot: counts), the newest N
kept, optionally copied off-host (offsite); restore checks the whole file, then feeds it back
through `pg_restore` (reading); restore drills prove it restores (drills)."""

from hosting.backups.files import BackupFile, backups_root, folder_bytes, list_backups
from hosting.backups.pg import BackupOutcome, backup_all, backup_one, restore

__all__ = [
    "BackupFile",
    "BackupOutcome",
    "backup_all",
    "backup_one",
    "backups_root",
    "folder_bytes",
    "list_backups",
    "restore",
]
