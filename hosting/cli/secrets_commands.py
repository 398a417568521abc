"""Secrets commands: secrets change-passphrase."""

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
    """The stack's secrets: change the passphrase that encrypts them."""


@secrets.command("change-passphrase")
@pass_app
def change_passphrase(app: App) -> None:
    """Re-encrypt the stack's secrets (database passwords, secret env values, in config and
    state) under a new passphrase.

    The current passphrase comes from $HOSTING_PASSPHRASE, the new one from
    $HOSTING_NEW_PASSPHRASE or, on a terminal, a prompt: never from the command line. Holds
    the apply lock. Saved plans made before are stale afterwards (their secrets' digests are
    keyed by the passphrase): make them again."""
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
    with apply_lock(app.state_dir):
        driver.change_passphrase(new)
    click.echo(
        "The stack's secrets are now encrypted under the new passphrase. Set "
        "HOSTING_PASSPHRASE to it wherever hosting runs (CI secrets too)."
    )
