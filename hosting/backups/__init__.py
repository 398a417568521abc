"""PostgreSQL backups of `type: database` deployments: `pg_dump -Fc` run inside the running
container, streamed to STATE_DIR/backups/<tenant>/<deployment>/<UTC stamp>.dump with a JSON
sidecar, the newest N kept; restore feeds a dump back through `pg_restore`."""

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
