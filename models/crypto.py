"""Personal data at rest: AES-GCM for values, HMAC-SHA256 blind indexes for look-ups.

One master key (KESU_SECRET_KEY or a 0600 key file made on first start) is split with
HKDF into an encryption key and a hashing key, so neither use weakens the other.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import re
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import LargeBinary
from sqlalchemy.types import TypeDecorator

_NONCE = 12


class KeyError_(ValueError):
    pass


class Keyring:
    def __init__(self, master: bytes):
        if len(master) < 32:
            raise KeyError_("the secret key must be at least 32 bytes (base64 of 32 random bytes)")
        self.enc = AESGCM(_derive(master, b"kesu-encrypt"))
        self.mac_key = _derive(master, b"kesu-blind-index")
        self.sign_key = _derive(master, b"kesu-sign")

    def encrypt(self, data: bytes) -> bytes:
        nonce = os.urandom(_NONCE)
        return nonce + self.enc.encrypt(nonce, data, None)

    def decrypt(self, blob: bytes) -> bytes:
        return self.enc.decrypt(blob[:_NONCE], blob[_NONCE:], None)

    def blind_index(self, kind: str, value: str) -> str:
        return hmac.new(self.mac_key, f"{kind}:{normalize_identity(kind, value)}".encode(), hashlib.sha256).hexdigest()

    def sign(self, text: str, length: int = 16) -> str:
        return hmac.new(self.sign_key, text.encode(), hashlib.sha256).hexdigest()[:length]

    def verify(self, text: str, signature: str) -> bool:
        return hmac.compare_digest(self.sign(text, len(signature) or 16), signature)


def _derive(master: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(master)


def normalize_identity(kind: str, value: str) -> str:
    value = value.strip()
    if kind == "email":
        return value.lower()
    if kind == "phone":
        digits = re.sub(r"\D", "", value)
        return digits[2:] if digits.startswith("86") and len(digits) == 13 else digits
    return value


def load_master_key(secret: str | None, key_file: str | os.PathLike) -> bytes:
    """The key from the setting, else from the key file, which is created (0600) on first use."""
    if secret:
        try:
            return base64.b64decode(secret, validate=True)
        except ValueError:
            raise KeyError_("KESU_SECRET_KEY must be base64 (e.g. of 32 random bytes)") from None
    path = Path(key_file)
    if path.exists():
        return base64.b64decode(path.read_text().strip())
    path.parent.mkdir(parents=True, exist_ok=True)
    key = os.urandom(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(base64.b64encode(key).decode() + "\n")
    return key


_keyring: Keyring | None = None


def configure(keyring: Keyring) -> None:
    """Install the process-wide keyring the encrypted column types use."""
    global _keyring
    _keyring = keyring


def keyring() -> Keyring:
    if _keyring is None:
        raise RuntimeError("encryption key not configured: call models.crypto.configure() at start")
    return _keyring


class EncryptedText(TypeDecorator):
    """A str stored as AES-GCM ciphertext."""
    impl = LargeBinary
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect) -> bytes | None:
        return None if value is None else keyring().encrypt(value.encode("utf-8"))

    def process_result_value(self, value: bytes | None, dialect) -> str | None:
        return None if value is None else keyring().decrypt(bytes(value)).decode("utf-8")


class EncryptedBytes(TypeDecorator):
    impl = LargeBinary
    cache_ok = True

    def process_bind_param(self, value: bytes | None, dialect) -> bytes | None:
        return None if value is None else keyring().encrypt(bytes(value))

    def process_result_value(self, value: bytes | None, dialect) -> bytes | None:
        return None if value is None else keyring().decrypt(bytes(value))


# One encoder for every value: json.dumps with options builds a new JSONEncoder on each call.
_json_encode = json.JSONEncoder(ensure_ascii=False, default=str).encode


class EncryptedJSON(TypeDecorator):
    impl = LargeBinary
    cache_ok = True

    def process_bind_param(self, value: Any, dialect) -> bytes | None:
        if value is None:
            return None
        return keyring().encrypt(_json_encode(value).encode("utf-8"))

    def process_result_value(self, value: bytes | None, dialect) -> Any:
        return None if value is None else json.loads(keyring().decrypt(bytes(value)))


_PHONE = re.compile(r"(?<!\d)(1[3-9]\d)\d{4}(\d{4})(?!\d)")
_EMAIL = re.compile(r"([A-Za-z0-9._%+-])[A-Za-z0-9._%+-]*(@[A-Za-z0-9.-]+)")


def mask(text: str | None) -> str | None:
    """Mask phone numbers (138****5678) and e-mail addresses (z***@example.com) in free text."""
    if text is None:
        return None
    text = _PHONE.sub(r"\1****\2", text)
    return _EMAIL.sub(r"\1***\2", text)
