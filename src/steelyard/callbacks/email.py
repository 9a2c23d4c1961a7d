"""Email callbacks: Scale lets ``callback_url`` be an email address; the JSON goes in the body."""

from __future__ import annotations

import smtplib
import ssl
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from urllib.parse import unquote, urlsplit

from steelyard.errors import ValidationError

_DEFAULT_PORTS = {"smtp": 25, "smtp+starttls": 587, "smtps": 465}


@dataclass(frozen=True)
class SmtpServer:
    host: str
    port: int
    security: str  # "plain" | "starttls" | "ssl"
    username: str | None
    password: str | None


def parse_smtp_url(url: str) -> SmtpServer:
    """``smtp://[user:password@]host[:port]``; ``smtps://`` (TLS) and ``smtp+starttls://``."""
    parts = urlsplit(url)
    if parts.scheme not in _DEFAULT_PORTS or not parts.hostname:
        raise ValidationError(
            "STEELYARD_SMTP_URL must look like smtp://host:port, smtps://host:port or "
            "smtp+starttls://user:password@host:port.",
            field="smtp_url",
        )
    security = {"smtp": "plain", "smtp+starttls": "starttls", "smtps": "ssl"}[parts.scheme]
    return SmtpServer(
        host=parts.hostname,
        port=parts.port or _DEFAULT_PORTS[parts.scheme],
        security=security,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
    )


def send_email(
    smtp_url: str,
    *,
    sender: str,
    to: str,
    subject: str,
    body: bytes,
    headers: dict[str, str],
    timeout: float,
) -> None:
    """Send ``body`` (UTF-8 JSON, byte for byte what an HTTP receiver would get) to ``to``.

    Raises ``smtplib.SMTPException`` or ``OSError`` on failure.
    """
    server = parse_smtp_url(smtp_url)
    # Lines up to SMTP's own limit: the default 78 would fold the signature header onto a
    # continuation line, which some receivers hand back with a leading space.
    message = EmailMessage(policy=policy.default.clone(max_line_length=998))
    message["From"] = sender
    message["To"] = to
    message["Subject"] = subject
    for name, value in headers.items():
        message[name] = value
    # text/plain so any mail client shows it; the content transfer encoding keeps long JSON
    # lines intact (SMTP limits lines to 998 characters).
    message.set_content(body.decode("utf-8"), subtype="plain", charset="utf-8")
    context = ssl.create_default_context()
    client: smtplib.SMTP
    if server.security == "ssl":
        client = smtplib.SMTP_SSL(server.host, server.port, timeout=timeout, context=context)
    else:
        client = smtplib.SMTP(server.host, server.port, timeout=timeout)
    with client:
        if server.security == "starttls":
            client.starttls(context=context)
        if server.username:
            client.login(server.username, server.password or "")
        client.send_message(message)
