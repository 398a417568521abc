"""Dunning's reminders by email (issue 15): `payments dunning` sends them through
`platform.smtp` with part A's delivery, to the real SMTP server on loopback that the delivery
tests use (STARTTLS and a login required); each step sends once."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.billing.site import DUE, NUMBER, TOTAL, write_site
from tests.billing.test_delivery import Mailbox, hosting, mailbox, smtp_block

__all__ = ["mailbox"]  # the module-scoped SMTP server fixture

pytestmark = pytest.mark.chromium  # the reminder carries the invoice's PDF


def test_reminders_are_emailed_once_per_step(tmp_path: Path, mailbox: Mailbox) -> None:
    root = write_site(tmp_path / "site", smtp_block(mailbox.port))
    assert hosting(root, mailbox, "invoice", "run", "--as-of", "2026-02-03").returncode == 0
    before = len(mailbox.messages)
    # Due 2026-03-05: day 1 is Mar 6 (run twice), day 3 Mar 8.
    emailed = ["emailed to billing@acme.test"]
    for day, expected in (("2026-03-06", emailed), ("2026-03-06", []), ("2026-03-08", emailed)):
        done = hosting(root, mailbox, "payments", "dunning", "--as-of", day, "--json")
        assert done.returncode == 0, done.stderr
        steps = json.loads(done.stdout)["steps"]
        assert [s["outcome"] for s in steps if s["step"] == "reminder"] == expected
    got = mailbox.messages[before:]
    assert len(got) == 2  # day 1 and day 3; the second run on day 1 sent nothing
    for r in got:
        assert r.recipients == ["billing@acme.test"] and r.tls
        subject = f"Reminder: invoice {NUMBER} from Demo Hosting Ltd: USD {TOTAL}, due {DUE}"
        assert str(r.message["Subject"]).strip() == subject
        text = r.message.get_body(("plain",))
        assert text is not None and "as unpaid" in text.get_content()
        assert [a.get_filename() for a in r.message.iter_attachments()] == [f"{NUMBER}.pdf"]
