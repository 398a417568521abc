"""What a database container needs for continuous WAL archiving (hosting/backups/pitr.py):
its backup folder's wal/ bind-mounted, and archiving on its command line. No imports of the
backups package here: the stack program stays free of it."""

from __future__ import annotations

from pathlib import Path

ARCHIVE_MOUNT = "/var/lib/postgresql/archive"  # where the server sees its wal/ folder
ARCHIVE_TIMEOUT_S = 300  # a quiet database still archives its last writes within 5 min
# The server's uid differs per image (and the folder is the host's): anyone may write, the
# sticky bit stops one uid deleting another's files, and the folder above is the host
# owner's alone (0700), so no other host user reaches it. Reading it back (fsync of the
# folder after a rename) needs r, hence not 1733.
ARCHIVE_DIR_MODE = 0o1777

# Run by the server (/bin/sh) for each finished segment: %p its path, %f its name. gzip keeps
# a forced switch's mostly empty 16 MB segment small. The checksum lands first, the segment
# last, both by rename after fsync: a killed run leaves only a hidden .partial (named by its
# shell's pid, so no later run has to overwrite it), which nothing reads.
# An existing segment is never overwritten: identical is success, different refused.
# Once the host has sealed it (hosting/backups/wal_seal.py: `$f.gz.enc`, the plain file
# removed) it cannot be compared without the key, which the server never holds: a sealed
# name counts as archived. Safe enough because the folder is this one server's alone (its
# own bind mount), a segment's name is unique to its timeline, and a restore promotes onto
# a timeline no history file in the archive names (it is given every history, sealed ones
# included). The plain name is tested first: the sealer writes `.gz.enc` before it removes
# `.gz`, so a segment being sealed meanwhile is always seen under one of the two.
ARCHIVE_COMMAND = (
    f"a={ARCHIVE_MOUNT}; f=%f; "
    'if [ -f "$a/$f.gz" ]; then gzip -dc "$a/$f.gz" | cmp -s - %p && exit 0; '
    'echo "archive: $f.gz exists with different contents, not overwritten" >&2; exit 1; fi; '
    '[ -f "$a/$f.gz.enc" ] && exit 0; '
    't="$a/.$f.$$.partial"; c="$a/.$f.$$.sha256.partial"; '
    'gzip -1 -c %p > "$t" && sync "$t" && '
    's=$(sha256sum "$t" | cut -d " " -f 1) && echo "$s  $f.gz" > "$c" && sync "$c" && '
    'mv "$c" "$a/$f.gz.sha256" && mv "$t" "$a/$f.gz" && sync "$a"'
)


def archive_dir(state_dir: Path, tenant: str, deployment: str) -> Path:
    """STATE_DIR/backups/<tenant>/<deployment>/wal: inside the database's backup folder, so
    the metering counts it as database storage with the dumps."""
    return state_dir / "backups" / tenant / deployment / "wal"


def server_args() -> tuple[str, ...]:
    """Appended to the server's command line (wal_level=replica is PG15's default). The
    upstream image's entrypoint and the test image's both pass `-c` options to postgres."""
    return (
        "-c", "archive_mode=on",
        "-c", f"archive_command={ARCHIVE_COMMAND}",
        "-c", f"archive_timeout={ARCHIVE_TIMEOUT_S}",
    )  # fmt: skip


def prepare(folder: Path) -> None:
    """The archive folder, writable by the server's user whatever its uid in the image."""
    folder.mkdir(parents=True, exist_ok=True)
    folder.parent.chmod(0o700)
    folder.chmod(ARCHIVE_DIR_MODE)
