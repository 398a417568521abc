"""Email through `platform.smtp`: one message, HTML with a plain-text alternative, attachments.

STARTTLS unless the file says `starttls: false`; the server's certificate is verified against
the system's CAs (or $SSL_CERT_FILE, OpenSSL's own variable). Username and password come from
`{env: NAME}` or `{file: path}` when a message is sent, and are never printed, logged or put
in an exception: errors name where the credential comes from, and any text from the server
or the library is scrubbed of the password before it is shown.
"""

from __future__ import annotations

import os
import smtplib
import ssl
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formatdate, make_msgid, parseaddr
from pathlib import Path

from hosting.errors import HostingError, UsageError
from hosting.secret_refs import read_secret
from hosting.spec.models import SecretRef, Smtp, Spec

SMTP_TIMEOUT_SECONDS = 30


class MailError(HostingError):
    """The mail server could not be reached, refused the login, or refused the message."""


@dataclass(frozen=True)
class Attachment:
    filename: str
    mime_type: str  # e.g. application/pdf
    data: bytes = field(repr=False)


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str = field(repr=False)


def smtp_of(spec: Spec) -> Smtp:
    smtp = spec.platform.smtp
    if smtp is None:
        raise UsageError(
            "no mail server: `platform.smtp` is not in the file",
            "add `smtp: {host: HOST, port: 587, from: ADDRESS, username: {env: NAME}, "
            "password: {env: NAME}}` under `platform`",
        )
    return smtp


def _read(ref: SecretRef, what: str, base_dir: Path, env: Mapping[str, str]) -> str:
    return read_secret(ref, f"platform.smtp.{what}", base_dir, env, when="before sending")


def credentials(
    smtp: Smtp, base_dir: Path, env: Mapping[str, str] | None = None
) -> Credentials | None:
    """The login, or None when the file gives none (a relay that trusts this host)."""
    if smtp.username is None or smtp.password is None:
        return None
    environ = os.environ if env is None else env
    return Credentials(
        _read(smtp.username, "username", base_dir, environ),
        _read(smtp.password, "password", base_dir, environ),
    )


def message(
    sender: str,
    to: str,
    subject: str,
    text: str,
    html: str,
    attachments: Sequence[Attachment] = (),
) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = subject
    msg["Date"] = formatdate(usegmt=True)
    domain = parseaddr(sender)[1].rpartition("@")[2] or None
    msg["Message-ID"] = make_msgid(domain=domain)
    msg.set_content(text)
    msg.add_alternative(html, subtype="html")
    for a in attachments:
        maintype, _, subtype = a.mime_type.partition("/")
        msg.add_attachment(a.data, maintype=maintype, subtype=subtype, filename=a.filename)
    return msg


def _scrub(text: str, secret: Credentials | None) -> str:
    if secret is not None and secret.password:
        text = text.replace(secret.password, "[removed]")
    return text


def send(
    smtp: Smtp,
    msg: EmailMessage,
    login: Credentials | None,
    tls: ssl.SSLContext | None = None,
) -> None:
    """Deliver `msg` to the server (STARTTLS first unless `starttls: false`)."""
    where = f"{smtp.host}:{smtp.port}"
    try:
        with smtplib.SMTP(smtp.host, smtp.port, timeout=SMTP_TIMEOUT_SECONDS) as conn:
            conn.ehlo()
            if smtp.starttls:
                conn.starttls(context=tls or ssl.create_default_context())
                conn.ehlo()
            if login is not None:
                conn.login(login.username, login.password)
            conn.send_message(msg)
    except smtplib.SMTPAuthenticationError as exc:
        raise MailError(
            f"the mail server {where} refused the login ({exc.smtp_code})",
            "check the credentials platform.smtp.username and .password point at",
        ) from None
    except smtplib.SMTPNotSupportedError:
        raise MailError(
            f"the mail server {where} does not offer STARTTLS",
            "use a server that does, or set `starttls: false` only for a relay on this host",
        ) from None
    except ssl.SSLCertVerificationError as exc:
        raise MailError(
            f"the mail server {where}'s certificate is not trusted: {exc.verify_message}",
            "trust its CA (SSL_CERT_FILE=ca.pem) or fix platform.smtp.host",
        ) from None
    except smtplib.SMTPResponseException as exc:
        reply = (
            exc.smtp_error.decode(errors="replace")
            if isinstance(exc.smtp_error, bytes)
            else str(exc.smtp_error)
        )
        raise MailError(
            f"the mail server {where} refused the message: {exc.smtp_code} "
            f"{_scrub(reply, login)[:200]}"
        ) from None
    except (smtplib.SMTPException, OSError) as exc:
        why = _scrub(str(exc) or type(exc).__name__, login)
        raise MailError(
            f"cannot send through the mail server {where}: {why[:200]}",
            "is platform.smtp.host/port right, and the server up?",
        ) from None
