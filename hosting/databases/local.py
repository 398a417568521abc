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


def _docker_exec(
    docker_host: str, container: str, args: list[str], stdin: bytes, timeout: float, what: str
) -> bytes:
    if shutil.which("docker") is None:
        raise ProviderError("the docker CLI is not installed", "install Docker (docker.io)")
    try:
        proc = subprocess.run(
            ["docker", "exec", "-i", container, *args],
            input=stdin,
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
        raise ProviderError(
            f"{what} failed (exit {proc.returncode}): {'; '.join(lines[-3:]) or 'no message'}"
        )
    return proc.stdout


def run_shell(
    docker_host: str, container: str, script: str, *args: str, timeout: float = 60
) -> str:
    """A shell script in the container, as its user; `args` are its $1…"""
    out = _docker_exec(
        docker_host, container, ["sh", "-c", script, "sh", *args], b"", timeout, "sh"
    )
    return out.decode(errors="replace")


def run_sql(
    docker_host: str,
    container: str,
    user: str,
    dbname: str,
    sql: str,
    *,
    timeout: float = 60,
    one_transaction: bool = True,
) -> str:
    """Run `sql` as `user` (in one transaction unless told otherwise: ALTER SYSTEM cannot run
    in one); the rows printed unaligned, one per line."""
    args = [
        "sh", "-c", SOCKET_SCRIPT, "sh", "psql", "-X", "-q", "-A", "-t",
        *(["-1"] if one_transaction else []),
        "-v", "ON_ERROR_STOP=1", "-U", user, "-d", dbname,
    ]  # fmt: skip
    return _docker_exec(docker_host, container, args, sql.encode(), timeout, "psql").decode(
        errors="replace"
    )


def data_version(docker_host: str, container: str) -> int | None:
    """The PostgreSQL major version of the data directory the container runs on (its
    PG_VERSION file), or None when there is no such container or it cannot be asked."""
    try:
        out = run_shell(
            docker_host,
            container,
            'cat "${PGDATA:-/var/lib/postgresql/data}/PG_VERSION"',
            timeout=30,
        )
    except ProviderError:
        return None
    text = out.strip()
    return int(text) if text.isdigit() else None
