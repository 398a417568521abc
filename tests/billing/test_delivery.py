"""`hosting invoice send` against a real SMTP server on loopback (aiosmtpd) that requires
STARTTLS, with a throwaway certificate, and a login: the message as received is parsed and
checked (headers, HTML body, the PDF attachment read back with poppler, the amount)."""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import re
import shutil
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from tests.billing.site import DUE, NUMBER, TOTAL, write_site
from tests.conftest import REPO, require, run_hosting

aiosmtpd = pytest.importorskip("aiosmtpd")  # the test extras install it

from aiosmtpd.controller import Controller  # noqa: E402
from aiosmtpd.smtp import AuthResult, LoginPassword  # noqa: E402

pytestmark = pytest.mark.chromium

USER, PASSWORD = "billing-robot", "s3cret-Smtp-pa55word"


def throwaway_cert(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and localhost, its own CA."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = folder / "smtp.pem", folder / "smtp.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


@dataclass
class Received:
    envelope_from: str
    recipients: list[str]
    tls: bool
    login: str | None
    message: EmailMessage


@dataclass
class Mailbox:
    port: int
    ca: Path
    messages: list[Received] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        msg = message_from_bytes(envelope.content, policy=policy.default)
        assert isinstance(msg, EmailMessage)
        login = session.auth_data.login.decode() if session.auth_data else None
        self.messages.append(
            Received(
                envelope.mail_from, list(envelope.rcpt_tos), session.ssl is not None, login, msg
            )
        )
        return "250 OK"


def _check_login(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
    ok = isinstance(data, LoginPassword) and (data.login, data.password) == (
        USER.encode(),
        PASSWORD.encode(),
    )
    return AuthResult(success=ok, handled=False, auth_data=data)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def mailbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mailbox]:
    import ssl

    cert, key = throwaway_cert(tmp_path_factory.mktemp("tls"))
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(cert, key)
    box = Mailbox(_free_port(), cert)
    server = Controller(
        box,
        hostname="127.0.0.1",
        port=box.port,
        tls_context=tls,
        require_starttls=True,  # nothing, not even AUTH, before STARTTLS
        auth_required=True,
        auth_require_tls=True,
        authenticator=_check_login,
    )
    server.start()
    try:
        yield box
    finally:
        server.stop()


def smtp_block(port: int) -> str:
    return (
        "  smtp:\n"
        f"    host: 127.0.0.1\n    port: {port}\n"
        "    from: Demo Billing <billing@demo.test>\n"
        "    username: {env: SMTP_USER}\n    password: {env: SMTP_PASSWORD}\n"
    )


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, mailbox: Mailbox) -> Path:
    root = write_site(tmp_path_factory.mktemp("mail") / "site", smtp_block(mailbox.port))
    done = hosting(root, mailbox, "invoice", "run", "--as-of", "2026-02-03")
    assert done.returncode == 0, done.stderr
    return root


def hosting(
    root: Path, box: Mailbox, *args: str, password: str = PASSWORD, trust: bool = True
) -> subprocess.CompletedProcess[str]:
    env = {"PYTHONPATH": str(REPO), "SMTP_USER": USER, "SMTP_PASSWORD": password}
    if trust:
        env["SSL_CERT_FILE"] = str(box.ca)  # OpenSSL's own variable: trust the throwaway CA
    return run_hosting(*args, cwd=root, env=env)


def pdf_text(data: bytes, folder: Path) -> tuple[str, str]:
    require(shutil.which("pdftotext") is not None, "pdftotext (Debian package poppler-utils)")
    path = folder / "attached.pdf"
    path.write_bytes(data)
    text = subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True)
    info = subprocess.run(["pdfinfo", str(path)], capture_output=True, text=True)
    return text.stdout, info.stdout


def test_send_delivers_html_and_pdf_once(site: Path, mailbox: Mailbox, tmp_path: Path) -> None:
    before = len(mailbox.messages)
    result = hosting(site, mailbox, "invoice", "send", NUMBER)
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"{NUMBER}: sent to billing@acme.test\n"
    assert len(mailbox.messages) == before + 1
    got = mailbox.messages[-1]
    assert (got.tls, got.login) == (True, USER)
    assert (got.envelope_from, got.recipients) == ("billing@demo.test", ["billing@acme.test"])
    msg = got.message
    assert msg["From"] == "Demo Billing <billing@demo.test>"
    assert msg["To"] == "billing@acme.test"
    # 9.99 + 19 % tax 1.90 = 11.89, nothing paid or credited: all of it due.
    # (Python folds a long Subject onto its own continuation line; the leading space that
    # unfolding leaves is not part of the text, RFC 5322 2.2.3.)
    subject = f"Invoice {NUMBER} from Demo Hosting Ltd: USD {TOTAL}, due {DUE}"
    assert str(msg["Subject"]).strip() == subject
    assert re.fullmatch(r"<[^@>]+@demo\.test>", msg["Message-ID"])
    html = msg.get_body(("html",))
    assert html is not None
    body = html.get_content()
    assert NUMBER in body and f"USD {TOTAL}" in body and DUE in body
    text = msg.get_body(("plain",))
    assert text is not None and f"Amount due by {DUE}: USD {TOTAL}" in text.get_content()
    attachments = list(msg.iter_attachments())
    assert [(a.get_filename(), a.get_content_type()) for a in attachments] == [
        (f"{NUMBER}.pdf", "application/pdf")
    ]
    data = attachments[0].get_content()
    assert isinstance(data, bytes) and data.startswith(b"%PDF-")
    pdf, info = pdf_text(data, tmp_path)
    assert re.search(r"^Pages:\s+1$", info, re.M), info
    assert NUMBER in pdf and f"USD {TOTAL}" in pdf and DUE in pdf

    # Recorded: a second send is skipped, and says so; --resend sends it again.
    again = hosting(site, mailbox, "invoice", "send", NUMBER)
    assert again.returncode == 0, again.stderr
    assert "already sent to billing@acme.test on " in again.stdout
    assert again.stdout.endswith("; not sent again (--resend sends it again)\n")
    assert len(mailbox.messages) == before + 1
    unsent = hosting(site, mailbox, "invoice", "send", "--all-unsent")
    assert (unsent.returncode, unsent.stdout) == (0, "no unsent invoices\n"), unsent.stderr
    resent = hosting(site, mailbox, "invoice", "send", NUMBER, "--resend", "--json")
    assert resent.returncode == 0, resent.stderr
    doc = json.loads(resent.stdout)
    assert [(d["invoice_number"], d["attempt"], d["kind"]) for d in doc["sent"]] == [
        (NUMBER, 2, "invoice")
    ]
    assert len(mailbox.messages) == before + 2
    assert mailbox.messages[-1].message["Message-ID"] != msg["Message-ID"]

    audit = hosting(site, mailbox, "audit", "--json")
    assert audit.returncode == 0, audit.stderr
    sends = [
        e for e in json.loads(audit.stdout)["entries"] if e["what"]["command"] == "invoice send"
    ]
    assert len(sends) == 4, sends
    assert PASSWORD not in audit.stdout


def test_all_unsent_sends_only_the_new_invoice(site: Path, mailbox: Mailbox) -> None:
    hosting(site, mailbox, "invoice", "send", NUMBER)  # sent already, or now
    ran = hosting(site, mailbox, "invoice", "run", "--as-of", "2026-03-03")
    assert ran.returncode == 0, ran.stderr
    before = len(mailbox.messages)
    result = hosting(site, mailbox, "invoice", "send", "--all-unsent")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "INV-20260303-000002: sent to billing@acme.test\n"
    assert len(mailbox.messages) == before + 1
    assert "INV-20260303-000002" in str(mailbox.messages[-1].message["Subject"])


def test_a_refused_login_names_no_password_and_records_nothing(
    site: Path, mailbox: Mailbox
) -> None:
    wrong = "Wrong-pa55word-xyz"
    before = len(mailbox.messages)
    result = hosting(site, mailbox, "invoice", "send", NUMBER, "--resend", password=wrong)
    assert result.returncode == 1
    assert result.stderr.startswith(
        f"error: the mail server 127.0.0.1:{mailbox.port} refused the login (535)"
    ), result.stderr
    assert "Traceback" not in result.stderr
    for text in (result.stdout, result.stderr, *_state_texts(site)):
        assert wrong not in text and PASSWORD not in text
    assert len(mailbox.messages) == before
    shown = hosting(site, mailbox, "invoice", "send", NUMBER)
    assert "not sent again" in shown.stdout  # the earlier delivery, not a failed one


def test_an_untrusted_certificate_is_refused(site: Path, mailbox: Mailbox) -> None:
    before = len(mailbox.messages)
    result = hosting(site, mailbox, "invoice", "send", NUMBER, "--resend", trust=False)
    assert result.returncode == 1
    assert result.stderr.startswith(
        f"error: the mail server 127.0.0.1:{mailbox.port}'s certificate is not trusted: "
    ), result.stderr
    assert len(mailbox.messages) == before


def test_a_missing_password_variable_is_named(site: Path, mailbox: Mailbox) -> None:
    result = hosting(site, mailbox, "invoice", "send", NUMBER, "--resend", password="")
    assert result.returncode == 1
    assert result.stderr == (
        "error: $SMTP_PASSWORD is not set (platform.smtp.password) "
        "(hint: export SMTP_PASSWORD before sending)\n"
    )


def _state_texts(root: Path) -> list[str]:
    """Everything hosting wrote as text under the state directory (logs, audit log)."""
    out = []
    for path in (root / ".hosting").rglob("*"):
        if path.is_file() and path.suffix in (".log", ".jsonl", ".txt", ".json"):
            out.append(path.read_text(errors="replace"))
    return out


def test_a_changed_billing_email_gets_the_next_send(site: Path, mailbox: Mailbox) -> None:
    """The document keeps the address it was issued to; the email goes to today's."""
    spec = site / "hosting.yaml"
    original = spec.read_text()
    spec.write_text(original.replace("email: billing@acme.test", "email: ap@acme.test"))
    try:
        result = hosting(site, mailbox, "invoice", "send", NUMBER, "--resend")
    finally:
        spec.write_text(original)
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"{NUMBER}: sent again to ap@acme.test\n"
    assert mailbox.messages[-1].recipients == ["ap@acme.test"]
    shown = json.loads(hosting(site, mailbox, "invoice", "show", NUMBER, "--json").stdout)
    assert shown["document"]["buyer"]["email"] == "billing@acme.test"
