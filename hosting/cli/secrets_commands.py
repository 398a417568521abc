"""Secrets commands: secrets rotate, secrets change-passphrase."""

from __future__ import annotations

import os
import sys

import click

from hosting.cli import cli
from hosting.cli.context import App
from hosting.errors import UsageError

pass_app = click.make_pass_decorator(App)

NEW_PASSPHRASE_ENV = "HOSTING_NEW_PASSPHRASE"


@cli.group()
def secrets() -> None:
    """The stack's secrets: rotate a database's password, change the passphrase."""


@secrets.command("rotate")
@click.argument("ref", metavar="TENANT/DATABASE")
@pass_app
def rotate(app: App, ref: str) -> None:
    """Give a database a new password, keeping the old one valid meanwhile.

    Creates a new login role with a new password next to the current one. The next
    `hosting apply` rolls every deployment whose env uses the database's user, password or
    url, and then retires the old login: from then on its password is refused. Holds the
    apply lock; needs the database running."""
    from hosting.cli.deploy_commands import _deployment, _driver
    from hosting.provider.apply_lock import apply_lock
    from hosting.spec.models import DatabaseDeployment
    from hosting.stacks.refs import login_dependants

    tid, did, dep = _deployment(app.spec, ref)
    if not isinstance(dep, DatabaseDeployment):
        raise UsageError(
            f"`{ref}` is a {dep.type} deployment, not a database",
            "only databases have generated passwords; rotate an env secret by changing its "
            "value at its source and applying",
        )
    driver = _driver(app, live=False)
    with apply_lock(app.state_dir):
        access = driver.rotate_database(tid, did)
    rolled = login_dependants(app.spec, tid, did)
    click.echo(f"{ref}: new login `{access.login}` with a new password.")
    if rolled:
        click.echo(
            f"Run `hosting apply` to roll {', '.join(f'{tid}/{d}' for d in rolled)} onto it; "
            "the old password stays valid until that apply has finished."
        )
    else:
        click.echo(
            "No deployment uses it in its env. The old password stays valid until the next "
            "`hosting apply`; `hosting credentials --show-secrets` shows the new one after it."
        )


@secrets.command("change-passphrase")
@pass_app
def change_passphrase(app: App) -> None:
    """Re-encrypt the stack's secrets (database passwords, secret env values, in config and
    state) under a new passphrase.

    The current passphrase comes from $HOSTING_PASSPHRASE, the new one from
    $HOSTING_NEW_PASSPHRASE or, on a terminal, a prompt: never from the command line. Holds
    the apply lock. Saved plans made before are stale afterwards (their secrets' digests are
    keyed by the passphrase): make them again. Database backups are re-encrypted too."""
    from hosting.backups.rekey import rekeyed
    from hosting.cli.deploy_commands import _driver
    from hosting.provider.apply_lock import apply_lock

    new = os.environ.get(NEW_PASSPHRASE_ENV)
    if new is None:
        if not sys.stdin.isatty():
            raise UsageError(
                "no new passphrase", f"set {NEW_PASSPHRASE_ENV}; never pass it as an argument"
            )
        new = click.prompt("New passphrase", hide_input=True, confirmation_prompt=True)
    driver = _driver(app, live=False)
    # The backups are re-encrypted alongside: prepared first, swapped in only if it worked.
    with apply_lock(app.state_dir), rekeyed(app.state_dir, driver.passphrase or "", new) as bk:
        driver.change_passphrase(new)
    click.echo(
        "The stack's secrets are now encrypted under the new passphrase. Set "
        "HOSTING_PASSPHRASE to it wherever hosting runs (CI secrets too)."
    )
    if bk.done:
        click.echo(f"{len(bk.done)} backups re-encrypted under the new passphrase.")
    for ref in bk.unreadable:
        click.echo(f"warning: backup {ref} opens with neither passphrase; left as it is", err=True)
