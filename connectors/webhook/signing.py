"""kesu's webhook signature, both ways: ``X-Kesu-Signature: sha256=<hex HMAC-SHA256(secret, timestamp + "." + body)>``
with ``X-Kesu-Timestamp`` in unix seconds, accepted within five minutes of our clock."""
from __future__ import annotations

import hashlib
import hmac
import time
from collections import OrderedDict

TIMESTAMP_HEADER = "X-Kesu-Timestamp"
SIGNATURE_HEADER = "X-Kesu-Signature"
MAX_SKEW = 300


class SignatureError(ValueError):
    """Why a request is refused with 401."""


def sign(secret: str, timestamp: str, body: bytes) -> str:
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def signed_headers(secret: str, body: bytes, now: float | None = None) -> dict[str, str]:
    ts = str(int(now if now is not None else time.time()))
    return {TIMESTAMP_HEADER: ts, SIGNATURE_HEADER: sign(secret, ts, body), "Content-Type": "application/json"}


def check_time(timestamp: str | None, now: float, max_skew: float = MAX_SKEW) -> int:
    if not timestamp:
        raise SignatureError(f"missing {TIMESTAMP_HEADER} header")
    try:
        ts = int(timestamp)
    except ValueError:
        raise SignatureError(f"{TIMESTAMP_HEADER} must be unix seconds") from None
    if abs(now - ts) > max_skew:
        raise SignatureError(f"{TIMESTAMP_HEADER} is more than {int(max_skew)} seconds off")
    return ts


def verify(secret: str, timestamp: str | None, signature: str | None, body: bytes, now: float,
           max_skew: float = MAX_SKEW) -> None:
    if not signature:
        raise SignatureError(f"missing {SIGNATURE_HEADER} header")
    check_time(timestamp, now, max_skew)
    expected = sign(secret, timestamp, body)
    if not hmac.compare_digest(signature.encode("utf-8", "replace"), expected.encode()):
        raise SignatureError("signature does not match")


def equal_hex(given: str | None, expected: str) -> bool:
    return given is not None and hmac.compare_digest(given.lower().encode("utf-8", "replace"), expected.encode())


class NonceCache:
    """For schemes whose signature does not cover the body (Weibo's): a (timestamp, nonce) seen
    again with a different body is a forgery. Entries older than the time window are dropped."""

    def __init__(self, window: float = 2 * MAX_SKEW, limit: int = 100_000):
        self.window = window
        self.limit = limit
        self._seen: OrderedDict[tuple[str, str], tuple[float, str]] = OrderedDict()

    def check(self, timestamp: str, nonce: str, body: bytes, now: float) -> None:
        while self._seen:
            oldest = next(iter(self._seen.values()))[0]
            if oldest >= now - self.window and len(self._seen) < self.limit:
                break
            self._seen.popitem(last=False)
        digest = hashlib.sha256(body).hexdigest()
        seen = self._seen.get((timestamp, nonce))
        if seen is not None and seen[1] != digest:
            raise SignatureError("nonce reused with another body")
        self._seen[(timestamp, nonce)] = (now, digest)
