"""Settings: `kesu.toml` (path from --config or KESU_CONFIG), overridden by KESU_* variables.

Every value is checked here, so a bad setting stops the start with a message naming it.
"""
from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Mapping


class SettingsError(ValueError):
    """A setting is missing or invalid; the message names it."""


@dataclass(frozen=True)
class MailboxSettings:
    host: str
    user: str
    password: str
    port: int = 993
    tls: str = "imaps"            # imaps | starttls | none (loopback tests)
    folder: str = "INBOX"
    after: str = "seen"           # seen: flag \Seen; move: move to `move_to`
    move_to: str | None = None
    poll_seconds: float = 30.0
    idle: bool = True


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    sender: str                   # the From address of kesu's mail
    port: int = 587
    tls: str = "starttls"         # ssl | starttls | none
    user: str | None = None
    password: str | None = None


@dataclass(frozen=True)
class WechatSettings:
    appid: str
    secret: str
    token: str
    aes_key: str | None = None    # EncodingAESKey (43 chars); required in safe mode
    mode: str = "safe"            # safe | plain
    api_base: str = "https://api.weixin.qq.com"


@dataclass(frozen=True)
class WebhookSource:
    name: str
    secret: str
    callback_url: str | None = None


@dataclass(frozen=True)
class Settings:
    database_url: str = "sqlite+aiosqlite:///./kesu.db"
    http_host: str = "127.0.0.1"
    http_port: int = 8080
    public_url: str | None = None          # how customers reach us (links in mail); default http://host:port
    secret_key: str | None = None          # base64 32 bytes; else read/created at key_file
    key_file: str = "./kesu.key"
    model_dir: str = "./kesu-models"
    review_threshold: float = 0.5
    worker_batch: int = 64
    worker_max_attempts: int = 5
    worker_idle_seconds: float = 0.5
    outbox_max_attempts: int = 8
    ack_limit_per_hour: int = 5            # acknowledgements per customer address per hour
    attachment_limit: int = 10 * 1024 * 1024
    max_text_chars: int = 20_000
    timezone: str = "Asia/Shanghai"
    calendar_file: str | None = None       # extra holidays / make-up working days (TOML or JSON)
    retention_years: int = 3               # closed complaints are kept at least this long
    mailboxes: tuple[MailboxSettings, ...] = ()
    smtp: SmtpSettings | None = None
    wechat: WechatSettings | None = None
    webhook_sources: tuple[WebhookSource, ...] = ()

    @property
    def base_url(self) -> str:
        return self.public_url or f"http://{self.http_host}:{self.http_port}"


def load_settings(config: str | os.PathLike | None = None, env: Mapping[str, str] | None = None) -> Settings:
    env = os.environ if env is None else env
    path = config or env.get("KESU_CONFIG")
    data: dict[str, Any] = {}
    if path:
        p = Path(path)
        if not p.is_file():
            raise SettingsError(f"config file {p} does not exist (--config / KESU_CONFIG)")
        try:
            data = tomllib.loads(p.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise SettingsError(f"config file {p} is not valid TOML: {exc}") from None
    return _build(data, env)


def _build(data: dict[str, Any], env: Mapping[str, str]) -> Settings:
    known = {f for f in Settings.__dataclass_fields__} - {"mailboxes", "smtp", "wechat", "webhook_sources"}
    top = {k: v for k, v in data.items() if k in known}
    unknown = set(data) - known - {"email", "smtp", "wechat", "webhook"}
    if unknown:
        raise SettingsError(f"unknown setting(s) in config: {', '.join(sorted(unknown))}")
    for key, var in (("database_url", "KESU_DATABASE_URL"), ("http_host", "KESU_HTTP_HOST"),
                     ("http_port", "KESU_HTTP_PORT"), ("secret_key", "KESU_SECRET_KEY"),
                     ("model_dir", "KESU_MODEL_DIR"), ("key_file", "KESU_KEY_FILE"),
                     ("public_url", "KESU_PUBLIC_URL"), ("calendar_file", "KESU_CALENDAR_FILE")):
        if env.get(var):
            top[key] = env[var]
    s = Settings(**{k: _coerce(k, v) for k, v in top.items()})
    s = replace(s, mailboxes=_mailboxes(data.get("email", []), env), smtp=_smtp(data.get("smtp"), env),
                wechat=_wechat(data.get("wechat"), env), webhook_sources=_webhooks(data.get("webhook"), env))
    _validate(s)
    return s


_INTS = {"http_port", "worker_batch", "worker_max_attempts", "outbox_max_attempts", "ack_limit_per_hour",
         "attachment_limit", "max_text_chars", "retention_years"}
_FLOATS = {"review_threshold", "worker_idle_seconds"}


def _coerce(name: str, value: Any) -> Any:
    try:
        if name in _INTS:
            return int(value)
        if name in _FLOATS:
            return float(value)
    except (TypeError, ValueError):
        raise SettingsError(f"setting {name} must be a number, got {value!r}") from None
    return value


def _validate(s: Settings) -> None:
    if not s.database_url.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
        raise SettingsError("KESU_DATABASE_URL / database_url must start with sqlite+aiosqlite:// "
                            f"or postgresql+asyncpg://, got {s.database_url!r}")
    if not 0 < s.http_port < 65536:
        raise SettingsError(f"KESU_HTTP_PORT / http_port must be 1-65535, got {s.http_port}")
    if not 0.0 <= s.review_threshold <= 1.0:
        raise SettingsError("review_threshold must be between 0 and 1")
    for n in ("worker_batch", "worker_max_attempts", "outbox_max_attempts", "max_text_chars",
              "retention_years"):
        if getattr(s, n) < 1:
            raise SettingsError(f"setting {n} must be at least 1")
    for mb in s.mailboxes:
        if mb.tls not in ("imaps", "starttls", "none"):
            raise SettingsError(f"email tls for {mb.user}@{mb.host} must be imaps, starttls or none, got {mb.tls!r}")
        if mb.after not in ("seen", "move") or (mb.after == "move" and not mb.move_to):
            raise SettingsError(f"email after for {mb.user}@{mb.host} must be 'seen' or 'move' with move_to")
    if s.smtp and s.smtp.tls not in ("ssl", "starttls", "none"):
        raise SettingsError(f"KESU_SMTP_TLS / smtp.tls must be ssl, starttls or none, got {s.smtp.tls!r}")
    if s.wechat:
        if s.wechat.mode not in ("safe", "plain"):
            raise SettingsError(f"wechat mode must be safe or plain, got {s.wechat.mode!r}")
        if s.wechat.mode == "safe" and (not s.wechat.aes_key or len(s.wechat.aes_key) != 43):
            raise SettingsError("KESU_WECHAT_AES_KEY / wechat.aes_key (43 characters) is required in safe mode")


def _need(section: str, data: Mapping[str, Any], *names: str) -> None:
    for n in names:
        if not data.get(n):
            raise SettingsError(f"{section}.{n} is required")


def _mailboxes(sections: Any, env: Mapping[str, str]) -> tuple[MailboxSettings, ...]:
    if isinstance(sections, dict):
        sections = [sections]
    boxes = []
    for i, sec in enumerate(sections):
        _need(f"email[{i}]", sec, "host", "user", "password")
        try:
            boxes.append(MailboxSettings(**{**sec, "port": int(sec.get("port", 993))}))
        except TypeError as exc:
            raise SettingsError(f"email[{i}]: {exc}") from None
    if env.get("KESU_IMAP_HOST"):
        sec = {"host": env["KESU_IMAP_HOST"], "user": env.get("KESU_IMAP_USER"),
               "password": env.get("KESU_IMAP_PASSWORD")}
        _need("KESU_IMAP", {k.upper(): v for k, v in sec.items()}, "USER", "PASSWORD")
        tls = env.get("KESU_IMAP_TLS", "imaps")
        port = env.get("KESU_IMAP_PORT") or {"imaps": 993}.get(tls, 143)
        try:
            port = int(port)
        except ValueError:
            raise SettingsError(f"KESU_IMAP_PORT must be a number, got {port!r}") from None
        boxes.append(MailboxSettings(port=port, tls=tls, **sec))
    return tuple(boxes)


def _smtp(sec: Mapping[str, Any] | None, env: Mapping[str, str]) -> SmtpSettings | None:
    sec = dict(sec or {})
    for key, var in (("host", "KESU_SMTP_HOST"), ("port", "KESU_SMTP_PORT"), ("user", "KESU_SMTP_USER"),
                     ("password", "KESU_SMTP_PASSWORD"), ("sender", "KESU_SMTP_FROM"), ("tls", "KESU_SMTP_TLS")):
        if env.get(var):
            sec[key] = env[var]
    if not sec:
        return None
    _need("smtp", sec, "host", "sender")
    try:
        sec["port"] = int(sec.get("port", 587))
        return SmtpSettings(**sec)
    except (TypeError, ValueError) as exc:
        raise SettingsError(f"smtp: {exc}") from None


def _wechat(sec: Mapping[str, Any] | None, env: Mapping[str, str]) -> WechatSettings | None:
    sec = dict(sec or {})
    for key, var in (("appid", "KESU_WECHAT_APPID"), ("secret", "KESU_WECHAT_SECRET"), ("token", "KESU_WECHAT_TOKEN"),
                     ("aes_key", "KESU_WECHAT_AES_KEY"), ("api_base", "KESU_WECHAT_API_BASE"),
                     ("mode", "KESU_WECHAT_MODE")):
        if env.get(var):
            sec[key] = env[var]
    if not sec:
        return None
    _need("wechat", sec, "appid", "secret", "token")
    try:
        return WechatSettings(**sec)
    except TypeError as exc:
        raise SettingsError(f"wechat: {exc}") from None


def _webhooks(sec: Mapping[str, Any] | None, env: Mapping[str, str]) -> tuple[WebhookSource, ...]:
    sources: dict[str, WebhookSource] = {}
    for name, conf in ((sec or {}).get("sources") or {}).items():
        if not conf.get("secret"):
            raise SettingsError(f"webhook.sources.{name}.secret is required: a source without a secret is refused")
        sources[name] = WebhookSource(name=name, secret=conf["secret"], callback_url=conf.get("callback_url"))
    for pair in filter(None, (env.get("KESU_WEBHOOK_SECRETS") or "").split(",")):
        name, _, secret = pair.partition(":")
        if not name.strip() or not secret.strip():
            raise SettingsError(f"KESU_WEBHOOK_SECRETS entry {pair!r} must be name:secret")
        old = sources.get(name.strip())
        sources[name.strip()] = WebhookSource(name.strip(), secret.strip(), old.callback_url if old else None)
    return tuple(sources.values())
