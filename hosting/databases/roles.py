"""Login roles for password rotation with overlap.

PostgreSQL gives a role one password, so a rotation cannot keep the old one valid beside the
new one on the same role. Apps therefore log in as a *login role* of the database's owner:
generation 0 is the owner itself (POSTGRES_USER), generation N is `<owner>_rN`, a member of
the owner that switches to it at login (`ALTER ROLE … SET role`), so what it creates belongs
to the owner as before. A rotation adds generation N+1 next to N; once every dependant runs
with N+1, N is retired: the owner's password is removed (the local socket still trusts it,
for backups and for this), a generated role is dropped.
"""

from __future__ import annotations

from hosting.databases.scram import verifier

MAX_NAME = 63  # PostgreSQL's NAMEDATALEN - 1


def login_name(owner: str, generation: int) -> str:
    if generation == 0:
        return owner
    suffix = f"_r{generation}"
    return owner[: MAX_NAME - len(suffix)] + suffix


def ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def create_login_sql(owner: str, generation: int, password: str) -> str:
    """Generation `generation`'s login role with `password` (sent as a SCRAM verifier). A
    role of that name left by an interrupted rotation, never handed to anyone, is replaced."""
    role = login_name(owner, generation)
    return (
        f"DROP ROLE IF EXISTS {ident(role)};\n"
        f"CREATE ROLE {ident(role)} LOGIN PASSWORD {literal(verifier(password))}"
        f" IN ROLE {ident(owner)};\n"
        f"ALTER ROLE {ident(role)} SET role = {literal(owner)};\n"
    )


def ensure_login_sql(owner: str, generation: int, verifier_text: str) -> str:
    """Generation `generation`'s login role, made again if it is missing: a point-in-time
    restore to before a rotation brings the roles back as they were then."""
    role = login_name(owner, generation)
    return (
        f"DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = {literal(role)}) THEN\n"
        f"  CREATE ROLE {ident(role)} LOGIN PASSWORD {literal(verifier_text)}"
        f" IN ROLE {ident(owner)};\n"
        f"  ALTER ROLE {ident(role)} SET role = {literal(owner)};\n"
        "END IF; END $$;\n"
    )


def retire_login_sql(owner: str, generation: int) -> str:
    """Refuse generation `generation`'s password from now on and end its network sessions
    (sessions on the local socket, such as a running backup, are left alone)."""
    role = login_name(owner, generation)
    terminate = (
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
        f" WHERE usename = {literal(role)} AND client_addr IS NOT NULL"
        " AND pid <> pg_backend_pid();\n"
    )
    if generation == 0:
        return f"ALTER ROLE {ident(owner)} PASSWORD NULL;\n" + terminate
    # REASSIGN first: an app that reset its role may have created objects of its own.
    return (
        f"DO $$ BEGIN IF EXISTS (SELECT FROM pg_roles WHERE rolname = {literal(role)}) THEN\n"
        f"  REASSIGN OWNED BY {ident(role)} TO {ident(owner)};\n"
        f"  DROP OWNED BY {ident(role)};\n"
        "END IF; END $$;\n" + terminate + f"DROP ROLE IF EXISTS {ident(role)};\n"
    )
