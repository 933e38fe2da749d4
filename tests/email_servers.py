"""Real mail servers for the email tests: a throw-away Dovecot IMAP server and an aiosmtpd
SMTP server on loopback that records what it receives.

Use from a test module with ``pytest_plugins = ["tests.email_servers"]`` or by importing the
fixtures. Dovecot follows /work/shared/RECIPES.md (gotchas included); a missing Dovecot
fails the run under CI=true and skips elsewhere.
"""
from __future__ import annotations

import asyncio
import base64
import csv
import datetime as dt
import ipaddress
import itertools
import os
import shutil
import socket
import ssl
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from pathlib import Path

import pytest

from tests.servers import server_missing

MAIL_UID = 10143
USERS = 500


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------- SMTP (aiosmtpd)

@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes

    @property
    def message(self):
        return message_from_bytes(self.data, policy=policy.default)


@dataclass
class SmtpRecorder:
    """aiosmtpd handler: records accepted messages; rules make chosen recipients fail."""
    messages: list[Received] = field(default_factory=list)
    rcpt_replies: dict[str, str] = field(default_factory=dict)   # address prefix -> SMTP reply
    data_reply: str | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        for prefix, reply in self.rcpt_replies.items():
            if address.startswith(prefix):
                return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.data_reply:
            return self.data_reply
        with self.lock:
            self.messages.append(Received(envelope.mail_from, list(envelope.rcpt_tos), bytes(envelope.content)))
        return "250 2.0.0 queued"

    def snapshot(self) -> list[Received]:
        with self.lock:
            return list(self.messages)

    async def wait_for(self, count: int, timeout: float = 60.0) -> list[Received]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = self.snapshot()
            if len(got) >= count:
                return got
            await asyncio.sleep(0.05)
        return self.snapshot()


@dataclass
class SmtpServer:
    host: str
    port: int
    recorder: SmtpRecorder
    tls_client_context: ssl.SSLContext | None = None


def _self_signed(tmp: Path) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                                                        x509.DNSName("localhost")]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    (tmp / "cert.pem").write_bytes(cert_pem)
    (tmp / "key.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                    serialization.NoEncryption()))
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(tmp / "cert.pem", tmp / "key.pem")
    client = ssl.create_default_context(cadata=cert_pem.decode())
    return server, client


def _start_controller(recorder: SmtpRecorder, **kwargs):
    from aiosmtpd.controller import Controller
    port = free_port()
    controller = Controller(recorder, hostname="127.0.0.1", port=port, decode_data=False, **kwargs)
    controller.start()
    return controller, port


@pytest.fixture
def smtp_server():
    """A plain SMTP server on loopback that records every message it accepts."""
    recorder = SmtpRecorder()
    controller, port = _start_controller(recorder)
    yield SmtpServer("127.0.0.1", port, recorder)
    controller.stop()


@pytest.fixture
def smtp_tls_server(tmp_path):
    """STARTTLS required, then AUTH (user kesu / password secret)."""
    from aiosmtpd.smtp import AuthResult

    def authenticator(server, session, envelope, mechanism, auth_data):
        ok = getattr(auth_data, "login", None) == b"kesu" and getattr(auth_data, "password", None) == b"secret"
        return AuthResult(success=ok, handled=False)   # handled=False: aiosmtpd answers 535 itself

    server_ctx, client_ctx = _self_signed(tmp_path)
    recorder = SmtpRecorder()
    controller, port = _start_controller(recorder, tls_context=server_ctx, require_starttls=True,
                                         authenticator=authenticator, auth_required=True)
    yield SmtpServer("127.0.0.1", port, recorder, client_ctx)
    controller.stop()


# ---------------------------------------------------------------- Dovecot

DOVECOT_CONF = """\
# Throw-away Dovecot for kesu's tests (see /work/shared/RECIPES.md).
base_dir      = {d}/run
state_dir     = {d}/state
log_path      = {d}/dovecot.log
instance_name = kesu-test-{tag}

protocols = imap
listen    = 127.0.0.1
{ssl}
disable_plaintext_auth = no
auth_mechanisms = plain login

default_internal_user  = dovecot
default_internal_group = dovecot
default_login_user     = dovenull

passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {d}/users
}}
userdb {{
  driver = static
  args = uid={uid} gid={uid} home={d}/mail/%u
}}
mail_location = maildir:~/Maildir

service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {tls_port}
  }}
}}
"""


class Dovecot:
    """One Dovecot instance; `user()` makes a fresh mailbox user (passwd-file is re-read on change)."""

    def __init__(self, root: Path, tls: bool = False):
        self.root = root
        self.tls = tls
        self.tls_port = free_port() if tls else 0
        self.client_tls_context: ssl.SSLContext | None = None
        self.port = free_port()
        self.host = "127.0.0.1"
        self.proc: subprocess.Popen | None = None
        self._users = itertools.count(1)
        self.conf = root / "dovecot.conf"

    def prepare(self) -> None:
        for sub in ("run", "state"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        mail = self.root / "mail"
        mail.mkdir(exist_ok=True)
        os.chown(mail, MAIL_UID, MAIL_UID)
        os.chmod(mail, 0o700)
        # All users up front: passwd-file is re-read when its mtime changes, which misses
        # two changes within one second.
        (self.root / "users").write_text("".join(f"u{i}:{{PLAIN}}secret\n" for i in range(1, USERS + 1)))
        os.chmod(self.root / "users", 0o644)
        ssl_conf = "ssl       = no"      # else Dovecot advertises STARTTLS it cannot do (gotcha 7)
        if self.tls:
            _, self.client_tls_context = _self_signed(self.root)
            ssl_conf = f"ssl = yes\nssl_cert = <{self.root}/cert.pem\nssl_key = <{self.root}/key.pem"
        self.conf.write_text(DOVECOT_CONF.format(d=self.root, port=self.port, uid=MAIL_UID, tag=os.getpid(),
                                                 ssl=ssl_conf, tls_port=self.tls_port))
        # Every directory above the config, users file and maildir must be traversable by the
        # dovecot user and the mail uid (gotcha 5).
        p = self.root
        while p != p.parent:
            try:
                mode = p.stat().st_mode & 0o777
                if mode & 0o011 != 0o011:
                    os.chmod(p, mode | 0o011)
            except PermissionError:
                pass
            p = p.parent

    def start(self, timeout: float = 15.0) -> None:
        self.proc = subprocess.Popen(["dovecot", "-F", "-c", str(self.conf)], stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                out = self.proc.stdout.read().decode(errors="replace") if self.proc.stdout else ""
                raise RuntimeError(f"dovecot exited with {self.proc.returncode}: {out} {self.log()[-2000:]}")
            try:
                with socket.create_connection((self.host, self.port), timeout=1) as s:
                    greeting = s.recv(200)
                    if greeting.startswith(b"* OK"):      # the greeting, not just an open port (gotcha 9)
                        return
                    last = greeting.decode(errors="replace")
            except OSError as exc:
                last = str(exc)
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"dovecot did not greet on {self.port}: {last} {self.log()[-2000:]}")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        if self.proc and self.proc.stdout:
            self.proc.stdout.close()
        self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def log(self) -> str:
        try:
            return (self.root / "dovecot.log").read_text(errors="replace")
        except OSError:
            return ""

    def user(self) -> str:
        """A user whose mailbox nobody has used yet (password "secret")."""
        n = next(self._users)
        if n > USERS:
            raise RuntimeError(f"more than {USERS} mailboxes in one test session")
        return f"u{n}"

    def maildir(self, user: str) -> Path:
        return self.root / "mail" / user / "Maildir"

    def settings(self, user: str, **overrides):
        from intake.settings import MailboxSettings
        kw = dict(host=self.host, port=self.port, user=user, password="secret", tls="none", poll_seconds=0.5)
        kw.update(overrides)
        return MailboxSettings(**kw)


@pytest.fixture(scope="session")
def dovecot():
    if not shutil.which("dovecot"):
        server_missing("Dovecot (dovecot-imapd)", "the dovecot binary is not on PATH")
    if os.geteuid() != 0:
        server_missing("Dovecot (dovecot-imapd)", "the test Dovecot needs root (it switches to the mail uid)")
    root = Path(tempfile.mkdtemp(prefix="kesu-dovecot-"))
    os.chmod(root, 0o711)
    server = Dovecot(root)
    server.prepare()
    try:
        server.start()
    except Exception as exc:
        shutil.rmtree(root, ignore_errors=True)
        server_missing("Dovecot (dovecot-imapd)", repr(exc))
    yield server
    server.stop()
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def dovecot_tls():
    """A second Dovecot with TLS: STARTTLS on `port`, implicit TLS on `tls_port` (self-signed)."""
    if not shutil.which("dovecot") or os.geteuid() != 0:
        server_missing("Dovecot (dovecot-imapd)", "the dovecot binary is not on PATH or we are not root")
    root = Path(tempfile.mkdtemp(prefix="kesu-dovecot-tls-"))
    os.chmod(root, 0o711)
    server = Dovecot(root, tls=True)
    server.prepare()
    try:
        server.start()
    except Exception as exc:
        shutil.rmtree(root, ignore_errors=True)
        server_missing("Dovecot (dovecot-imapd) with TLS", repr(exc))
    yield server
    server.stop()
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def mailbox(dovecot):
    """A fresh, empty mailbox user on the session's Dovecot."""
    return dovecot.settings(dovecot.user())


async def imap_append(settings, messages: list[bytes], folder: str = "INBOX", flags: str | None = None) -> None:
    """APPEND raw messages over a real IMAP connection."""
    import aioimaplib
    client = aioimaplib.IMAP4(host=settings.host, port=settings.port, timeout=30)
    try:
        await client.wait_hello_from_server()
        res = await client.login(settings.user, settings.password)
        assert res.result == "OK", res
        for raw in messages:
            res = await client.append(raw, mailbox=folder, flags=flags)
            assert res.result == "OK", res
        await client.logout()
    finally:
        close_client(client)


def close_client(client) -> None:
    transport = getattr(client.protocol, "transport", None)
    if transport is not None:
        transport.close()


# ---------------------------------------------------------------- realistic complaint mail

LABELLED = Path(__file__).resolve().parents[2] / "shared" / "data" / "labelled" / "complaints.csv"


def complaint_texts(n: int) -> list[str]:
    with open(LABELLED, encoding="utf-8") as fh:
        texts = [row["text"] for row in csv.DictReader(fh) if row["text"].strip()]
    return [texts[i % len(texts)] for i in range(n)]


def complaint_mail(i: int, text: str, sender: str | None = None) -> bytes:
    """A realistic complaint mail: GB2312, HTML with quoted history, multipart with a photo, or UTF-8."""
    sender = sender or f"c{i}@example.cn"
    subject = f"投诉 {i}：{text[:12]}"
    head = (f"From: =?utf-8?B?{base64.b64encode(f'客户{i}'.encode()).decode()}?= <{sender}>\r\n"
            f"To: cs@kesu.example\r\nMessage-ID: <mail.{i}.{time.time_ns()}@example.cn>\r\n"
            f"Date: Sun, 22 Nov 2026 10:{i % 60:02d}:00 +0800\r\nMIME-Version: 1.0\r\n")
    if i % 4 == 0:      # old client: GB2312 everywhere
        try:
            return (head + f"Subject: =?gb2312?B?{base64.b64encode(subject.encode('gb18030')).decode()}?=\r\n"
                    "Content-Type: text/plain; charset=gb2312\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
                    ).encode() + text.encode("gb18030") + b"\r\n"
        except UnicodeEncodeError:
            pass
    subj = f"Subject: =?utf-8?B?{base64.b64encode(subject.encode()).decode()}?=\r\n"
    if i % 4 == 1:      # HTML only, with a quoted history to trim
        html = (f"<html><body><div>{text}</div><div class='gmail_quote'>在 2026年11月21日 写道："
                "<blockquote>上一封邮件</blockquote></div></body></html>")
        return (head + subj + "Content-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n"
                + base64.encodebytes(html.encode()).decode().replace("\n", "\r\n")).encode()
    if i % 4 == 2:      # multipart with a small attachment
        photo = base64.encodebytes(os.urandom(3000)).decode().replace("\n", "\r\n")
        return (head + subj + "Content-Type: multipart/mixed; boundary=BB\r\n\r\n--BB\r\n"
                "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
                + text + "\r\n--BB\r\nContent-Type: image/jpeg; name=photo.jpg\r\n"
                "Content-Disposition: attachment; filename=photo.jpg\r\nContent-Transfer-Encoding: base64\r\n\r\n"
                + photo + "\r\n--BB--\r\n").encode()
    return (head + subj + "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
            ).encode() + text.encode() + b"\r\n"
