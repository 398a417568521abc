"""SQL run inside a database container, on its local socket (`docker exec … psql`).

The image trusts the local socket (initdb --auth-local=trust), so no password is needed, and
statements travel on stdin: nothing secret sits in an argv. Errors are scrubbed of SCRAM
verifiers, which psql may echo with the failing statement.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess

from hosting.errors import ProviderError

# Finds the server's socket (the test image uses /tmp, the upstream image /var/run/postgresql)
# and runs the given client with PGHOST set to it.
SOCKET_SCRIPT = (
    'for d in /var/run/postgresql /tmp; do if [ -S "$d/.s.PGSQL.5432" ]; then '
    'PGHOST="$d"; export PGHOST; exec "$@"; fi; done; '
    'echo "no PostgreSQL socket in /var/run/postgresql or /tmp (is the server up?)" >&2; exit 2'
)
_VERIFIER = re.compile(r"SCRAM-SHA-256\$\S+")


def run_sql(
    docker_host: str, container: str, user: str, dbname: str, sql: str, *, timeout: float = 60
) -> str:
    """Run `sql` in one transaction as `user`; the rows printed unaligned, one per line."""
    if shutil.which("docker") is None:
        raise ProviderError("the docker CLI is not installed", "install Docker (docker.io)")
    args = [
        "docker", "exec", "-i", container, "sh", "-c", SOCKET_SCRIPT, "sh",
        "psql", "-X", "-q", "-A", "-t", "-1", "-v", "ON_ERROR_STOP=1", "-U", user, "-d", dbname,
    ]  # fmt: skip
    try:
        proc = subprocess.run(
            args,
            input=sql.encode(),
            capture_output=True,
            timeout=timeout,
            env={**os.environ, "DOCKER_HOST": docker_host},
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise ProviderError(f"the database did not answer within {timeout:.0f} s") from None
    if proc.returncode != 0:
        text = _VERIFIER.sub("***", proc.stderr.decode(errors="replace"))
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        raise ProviderError(f"psql failed (exit {proc.returncode}): {'; '.join(lines[-3:])}")
    return proc.stdout.decode(errors="replace")
