"""Outgoing mail: outbox items rendered with Chinese templates and sent over SMTP.

Every message carries a signed Message-ID of ours (so replies and bounces find their
complaint), In-Reply-To/References to the customer's message (so their client threads it),
the complaint number in the subject, and Auto-Submitted on automatic messages (so
well-behaved auto-responders stay silent). 4xx replies and connection problems are
transient; 5xx replies are permanent.
"""
from __future__ import annotations

import asyncio
import logging
import re
import ssl
from datetime import datetime
from email.message import EmailMessage
from email.utils import formataddr, formatdate, parseaddr
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiosmtplib
from jinja2 import Environment, FileSystemLoader, TemplateError

from connectors.base import OutboundMessage, PermanentSendError, SendResult, TransientSendError
from models.crypto import keyring, mask

from .headers import clean_address
from .msgid import NUMBER, make_message_id

if TYPE_CHECKING:   # settings live in intake; connectors only read them
    from intake.settings import SmtpSettings

log = logging.getLogger(__name__)

TEMPLATES = Path(__file__).parent / "templates"
MAX_REFERENCES = 20
_MSGID = re.compile(r"^<[^<>\s]{1,250}>$")
_SHANGHAI = "Asia/Shanghai"
DEFAULT_ORGANISATION = "客户服务中心"
_SUBJECTS = {"ack": "您的投诉已受理", "progress": "投诉处理进展", "survey": "服务满意度回访", "reply": "关于您的投诉"}


def _local_time(value: Any) -> str:
    """ISO text or datetime to Shanghai local time (YYYY-MM-DD HH:MM); the input when unreadable."""
    try:
        from zoneinfo import ZoneInfo
        dt = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
        if dt.tzinfo is None:
            return dt.strftime("%Y-%m-%d %H:%M")
        return dt.astimezone(ZoneInfo(_SHANGHAI)).strftime("%Y-%m-%d %H:%M")
    except (ValueError, TypeError, KeyError):
        return str(value)


class Templates:
    """Jinja2 plain-text templates per outbox kind; the payload's own text when none fits."""

    def __init__(self, folder: Path = TEMPLATES, organisation: str = DEFAULT_ORGANISATION):
        self.env = Environment(loader=FileSystemLoader(str(folder)), autoescape=False, keep_trailing_newline=False,
                               trim_blocks=True, lstrip_blocks=True)
        self.env.filters["local_time"] = _local_time
        self.organisation = organisation

    def render(self, kind: str, payload: dict[str, Any], reply_to: dict[str, Any]) -> str:
        text = str(payload.get("text") or "")
        name = payload.get("template") or kind or "default"
        data = {**payload, "text": text, "name": _one_line(reply_to.get("name") or ""),
                "organisation": payload.get("organisation") or self.organisation,
                "response_due_local": _local_time(payload["response_due"]) if payload.get("response_due") else ""}
        for candidate in (f"{name}.txt.j2", "default.txt.j2"):
            try:
                rendered = self.env.get_template(candidate).render(**data)
            except TemplateError as exc:
                if candidate != "default.txt.j2" and "not found" not in str(exc) and type(exc).__name__ != "TemplateNotFound":
                    log.warning("email template %s failed: %s; using the default", candidate, exc)
                continue
            return re.sub(r"\n{3,}", "\n\n", rendered).strip() + "\n"
        return text


class SmtpSender:
    def __init__(self, settings: SmtpSettings, templates: Templates | None = None, *, timeout: float = 30.0,
                 tls_context: ssl.SSLContext | None = None):
        name, address = parseaddr(settings.sender)
        address = clean_address(address)
        if not address:
            raise ValueError(f"smtp.sender / KESU_SMTP_FROM is not an e-mail address: {settings.sender!r}")
        self.settings = settings
        self.from_name = name or None
        self.from_address = address
        self.domain = address.rpartition("@")[2]
        self.templates = templates or Templates(organisation=name or DEFAULT_ORGANISATION)
        self.timeout = timeout
        self.tls_context = tls_context

    def build(self, item: OutboundMessage) -> tuple[EmailMessage, str]:
        """The message for an outbox item, and our Message-ID on it."""
        payload, reply_to = dict(item.payload or {}), dict(item.reply_to or {})
        to = clean_address(str(reply_to.get("address") or ""))
        if not to:
            raise PermanentSendError("no e-mail address to answer to")
        number = payload.get("number") if re.fullmatch(NUMBER, str(payload.get("number") or "")) else None
        kind = payload.get("template") or item.kind
        # The same outbox item always gets the same Message-ID: a send retried after a crash
        # is recognised as one message by the recipient's client.
        nonce = keyring().sign(f"outbox:{item.id}:{item.dedupe_key}", 16)
        message_id = make_message_id(number, self.domain, nonce=nonce)

        msg = EmailMessage()
        msg["From"] = formataddr((_one_line(self.from_name or ""), self.from_address))
        msg["To"] = formataddr((_one_line(str(reply_to.get("name") or "")), to))
        msg["Subject"] = _subject(payload, reply_to, kind, number)
        msg["Date"] = formatdate(localtime=False)
        msg["Message-ID"] = message_id
        parent = reply_to.get("message_id")
        refs = [r for r in (reply_to.get("references") or []) if isinstance(r, str) and _MSGID.match(r.strip())]
        if isinstance(parent, str) and _MSGID.match(parent.strip()):
            msg["In-Reply-To"] = parent.strip()
            if parent.strip() not in refs:
                refs.append(parent.strip())
        if refs:
            msg["References"] = " ".join(r.strip() for r in refs[-MAX_REFERENCES:])
        if payload.get("automatic"):
            msg["Auto-Submitted"] = "auto-replied"
            msg["X-Auto-Response-Suppress"] = "All"     # asks Exchange-style servers for no out-of-office reply
        msg.set_content(self.templates.render(kind, payload, reply_to), charset="utf-8")
        return msg, message_id

    async def send(self, item: OutboundMessage) -> SendResult:
        msg, message_id = self.build(item)
        s = self.settings
        kwargs: dict[str, Any] = dict(hostname=s.host, port=s.port, timeout=self.timeout,
                                      sender=self.from_address, recipients=[clean_address(str(item.reply_to["address"]))])
        if s.tls == "ssl":
            kwargs["use_tls"] = True
        elif s.tls == "starttls":
            kwargs["start_tls"] = True
        else:
            kwargs["start_tls"] = False
        if self.tls_context is not None and s.tls != "none":
            kwargs["tls_context"] = self.tls_context
        if s.user:
            kwargs.update(username=s.user, password=s.password or "")
        try:
            errors, response = await aiosmtplib.send(msg, **kwargs)
        except aiosmtplib.SMTPRecipientsRefused as exc:
            codes = [r.code for r in exc.recipients]
            detail = "; ".join(f"{r.code} {r.message}" for r in exc.recipients)
            raise (PermanentSendError if all(c >= 500 for c in codes) else TransientSendError)(
                f"recipient refused: {detail}") from None
        except aiosmtplib.SMTPAuthenticationError as exc:
            # Our credentials, not this message: retrying after the operator fixes them must work.
            raise TransientSendError(f"SMTP authentication failed ({exc.code} {exc.message}): "
                                     "check smtp.user / smtp.password") from None
        except aiosmtplib.SMTPResponseException as exc:
            cls = PermanentSendError if 500 <= exc.code < 600 else TransientSendError
            raise cls(f"SMTP {exc.code} {exc.message}") from None
        except (aiosmtplib.SMTPException, OSError, asyncio.TimeoutError, ssl.SSLError) as exc:
            raise TransientSendError(f"SMTP {s.host}:{s.port}: {type(exc).__name__}: {exc}") from None
        log.info("email %s sent to %s as %s", item.kind, mask(str(item.reply_to["address"])), message_id)
        return SendResult(external_id=message_id, detail=str(response)[:200])


def _subject(payload: dict[str, Any], reply_to: dict[str, Any], kind: str, number: str | None) -> str:
    subject = _one_line(str(payload.get("subject") or ""))
    if not subject:
        theirs = _one_line(str(reply_to.get("subject") or ""))
        subject = (f"Re: {theirs}" if theirs and not theirs.lower().startswith("re:") else theirs) or \
            _SUBJECTS.get(kind, "客户服务")
    if number and number not in subject:
        subject = f"[{number}] {subject}"
    elif number and f"[{number}]" not in subject and f"【{number}】" not in subject:
        subject = subject.replace(number, f"[{number}]", 1)
    return subject[:400]


def _one_line(value: str) -> str:
    return re.sub(r"[\r\n\t\x00]+", " ", value).strip()
