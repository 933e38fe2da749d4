"""Our own Message-IDs, signed so that a reference to one can be trusted.

Form: ``<{number}.{nonce}.{sig}@{domain}>`` with ``sig = keyring().sign(number + "." + nonce)``.
A reply quoting one of these in In-Reply-To/References names its complaint reliably; a
forged or altered id fails verification and is ignored (the subject number is then tried).
"""
from __future__ import annotations

import re
import secrets
from typing import Callable

from models.crypto import keyring

NUMBER = r"\d{8}-[A-Z]{2,8}-\d{4,}"
NO_NUMBER = "kesu"                     # tag of our messages that belong to no complaint
_OURS = re.compile(rf"^<?({NUMBER}|{NO_NUMBER})\.([0-9a-z]{{8,32}})\.([0-9a-f]{{16}})@([^<>\s@]+)>?$")
SUBJECT_NUMBER = re.compile(rf"[\[【]\s*({NUMBER})\s*[\]】]")

Verifier = Callable[[str, str], bool]


def make_message_id(number: str | None, domain: str, nonce: str | None = None) -> str:
    """A new Message-ID of ours; pass `nonce` to make it repeatable (a retried send keeps its id)."""
    tag = number if number and re.fullmatch(NUMBER, number) else NO_NUMBER
    nonce = (nonce or secrets.token_hex(8)).lower()
    sig = keyring().sign(f"{tag}.{nonce}")
    return f"<{tag}.{nonce}.{sig}@{domain}>"


def verify(message_id: str, verifier: Verifier | None = None) -> tuple[bool, str | None]:
    """(is ours, complaint number or None). A bad signature is "not ours"."""
    m = _OURS.match(message_id.strip())
    if not m:
        return False, None
    tag, nonce, sig = m.group(1), m.group(2), m.group(3)
    check = verifier or _default_verifier()
    if check is None or not check(f"{tag}.{nonce}", sig):
        return False, None
    return True, (None if tag == NO_NUMBER else tag)


def _default_verifier() -> Verifier | None:
    try:
        return keyring().verify
    except RuntimeError:      # no key configured (e.g. `kesu mail parse` without settings)
        return None


def looks_ours(message_id: str) -> bool:
    """Shape only, no signature check: used to say "unverified" in diagnostics."""
    return bool(_OURS.match(message_id.strip()))


def subject_numbers(subject: str | None) -> list[str]:
    return SUBJECT_NUMBER.findall(subject or "")
