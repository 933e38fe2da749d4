"""WeChat message signatures and the safe-mode (AES) envelope.

Plain mode: ``signature = sha1(''.join(sorted([token, timestamp, nonce])))``; it does not
cover the body, which is why plain mode also checks the timestamp window and nonce reuse.

Safe mode (the same envelope as WeCom's WXBizMsgCrypt): ``msg_signature`` is the sha1 of the
sorted token, timestamp, nonce and the base64 ``Encrypt`` text; the plaintext is AES-256-CBC
with key = b64decode(EncodingAESKey + "="), iv = key[:16], PKCS#7 padded to 32 bytes, and reads
16 random bytes, a 4-byte big-endian length, the XML message, then the receiver id (our app id).
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import struct

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

BLOCK = 32  # WeChat pads to 32 bytes, not to AES's 16


class SignatureError(ValueError):
    """The request is not from WeChat (bad or missing signature, wrong app id)."""


def plain_signature(token: str, timestamp: str, nonce: str) -> str:
    return hashlib.sha1("".join(sorted([token, timestamp, nonce])).encode()).hexdigest()


def msg_signature(token: str, timestamp: str, nonce: str, encrypt: str) -> str:
    return hashlib.sha1("".join(sorted([token, timestamp, nonce, encrypt])).encode()).hexdigest()


def same(a: str | None, b: str) -> bool:
    return a is not None and hmac.compare_digest(a.encode("utf-8", "replace"), b.encode())


def check_plain(token: str, timestamp: str | None, nonce: str | None, signature: str | None) -> None:
    if not timestamp or not nonce or not same(signature, plain_signature(token, timestamp, nonce)):
        raise SignatureError("bad signature")


class WechatCrypto:
    """Encrypt and decrypt safe-mode envelopes for one app id."""

    def __init__(self, token: str, encoding_aes_key: str, appid: str):
        try:
            key = base64.b64decode(encoding_aes_key + "=", validate=True)
        except binascii.Error:
            raise ValueError("EncodingAESKey is not base64") from None
        if len(key) != 32:
            raise ValueError("EncodingAESKey must decode to 32 bytes (43 characters)")
        self.token = token
        self.appid = appid
        self._key = key

    def check(self, timestamp: str | None, nonce: str | None, encrypt: str | None, signature: str | None) -> None:
        if not timestamp or not nonce or not encrypt or not same(
                signature, msg_signature(self.token, timestamp, nonce, encrypt)):
            raise SignatureError("bad msg_signature")

    def decrypt(self, encrypt: str) -> bytes:
        """The XML inside an ``Encrypt`` element; raises SignatureError for anything malformed."""
        try:
            data = base64.b64decode(encrypt, validate=True)
        except (binascii.Error, ValueError):
            raise SignatureError("Encrypt is not base64") from None
        if not data or len(data) % 16:
            raise SignatureError("Encrypt has a bad length")
        dec = Cipher(algorithms.AES(self._key), modes.CBC(self._key[:16])).decryptor()
        plain = dec.update(data) + dec.finalize()
        pad = plain[-1]
        if not 1 <= pad <= BLOCK or plain[-pad:] != bytes([pad]) * pad:
            raise SignatureError("bad padding")
        plain = plain[:-pad]
        if len(plain) < 20:
            raise SignatureError("plaintext too short")
        (length,) = struct.unpack(">I", plain[16:20])
        if 20 + length > len(plain):
            raise SignatureError("bad message length")
        receiver = plain[20 + length:]
        if not hmac.compare_digest(receiver, self.appid.encode()):
            raise SignatureError("message is for another app id")
        return plain[20:20 + length]

    def encrypt(self, message: bytes, *, random16: bytes | None = None) -> str:
        body = (random16 or os.urandom(16)) + struct.pack(">I", len(message)) + message + self.appid.encode()
        pad = BLOCK - len(body) % BLOCK
        body += bytes([pad]) * pad
        enc = Cipher(algorithms.AES(self._key), modes.CBC(self._key[:16])).encryptor()
        return base64.b64encode(enc.update(body) + enc.finalize()).decode()

    def envelope(self, message: bytes, timestamp: str, nonce: str) -> bytes:
        """The passive-reply XML in safe mode."""
        encrypt = self.encrypt(message)
        sig = msg_signature(self.token, timestamp, nonce, encrypt)
        return (f"<xml><Encrypt><![CDATA[{encrypt}]]></Encrypt><MsgSignature><![CDATA[{sig}]]></MsgSignature>"
                f"<TimeStamp>{timestamp}</TimeStamp><Nonce><![CDATA[{nonce}]]></Nonce></xml>").encode()
