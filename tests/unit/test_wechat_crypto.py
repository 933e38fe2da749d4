"""WeChat signatures and the safe-mode envelope against the published test vectors."""
import json
import re
from pathlib import Path

import pytest

from connectors.wechat import xmlmsg
from connectors.wechat.crypto import (SignatureError, WechatCrypto, check_plain, msg_signature, plain_signature)

DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "webhooks"
VECTORS = json.loads((DATA / "vectors.json").read_text())


def _encrypt_of(body: str) -> str:
    return re.search(r"<Encrypt><!\[CDATA\[(.*?)\]\]>", body).group(1)


def test_plain_signature_matches_vector():
    v = VECTORS["wechat_official_account_plain"]
    assert plain_signature(v["token"], v["timestamp"], v["nonce"]) == v["signature"]
    check_plain(v["token"], v["timestamp"], v["nonce"], v["signature"])


@pytest.mark.parametrize("field", ["token", "timestamp", "nonce"])
def test_plain_signature_changes_with_every_input(field):
    v = dict(VECTORS["wechat_official_account_plain"])
    v[field] += "x"
    with pytest.raises(SignatureError):
        check_plain(v["token"], v["timestamp"], v["nonce"], VECTORS["wechat_official_account_plain"]["signature"])


def test_missing_signature_is_refused():
    v = VECTORS["wechat_official_account_plain"]
    with pytest.raises(SignatureError):
        check_plain(v["token"], v["timestamp"], v["nonce"], None)
    with pytest.raises(SignatureError):
        check_plain(v["token"], None, v["nonce"], v["signature"])


def test_echostr_vector_decrypts():
    v = VECTORS["wecom_echostr"]
    crypto = WechatCrypto(v["token"], v["encoding_aes_key"], v["receiver_id"])
    assert msg_signature(v["token"], v["timestamp"], v["nonce"], v["encrypt"]) == v["msg_signature"]
    crypto.check(v["timestamp"], v["nonce"], v["encrypt"], v["msg_signature"])
    assert crypto.decrypt(v["encrypt"]).decode() == v["plaintext"]


@pytest.mark.parametrize("name", ["wecom_message", "tencent_wxbizmsgcrypt_sample"])
def test_encrypted_message_vectors_decrypt(name):
    v = VECTORS[name]
    body = (DATA / v["request_body_file"]).read_text()
    enc = _encrypt_of(body)
    crypto = WechatCrypto(v["token"], v["encoding_aes_key"], v["receiver_id"])
    crypto.check(v["timestamp"], v["nonce"], enc, v["msg_signature"])
    plain = crypto.decrypt(enc)
    assert v["plaintext_contains"] in plain.decode()
    assert xmlmsg.parse(plain)["MsgType"] == "text"


def test_message_for_another_app_is_refused():
    v = VECTORS["wecom_message"]
    enc = _encrypt_of((DATA / v["request_body_file"]).read_text())
    other = WechatCrypto(v["token"], v["encoding_aes_key"], "wx_someone_else")
    with pytest.raises(SignatureError, match="another app"):
        other.decrypt(enc)


def test_wrong_msg_signature_is_refused():
    v = VECTORS["tencent_wxbizmsgcrypt_sample"]
    enc = _encrypt_of((DATA / v["request_body_file"]).read_text())
    crypto = WechatCrypto(v["token"], v["encoding_aes_key"], v["receiver_id"])
    with pytest.raises(SignatureError):
        crypto.check(v["timestamp"], v["nonce"], enc[:-4] + "AAA=", v["msg_signature"])
    with pytest.raises(SignatureError):
        crypto.check(str(int(v["timestamp"]) + 1), v["nonce"], enc, v["msg_signature"])


def test_encrypt_decrypt_round_trip_and_envelope():
    v = VECTORS["tencent_wxbizmsgcrypt_sample"]
    crypto = WechatCrypto(v["token"], v["encoding_aes_key"], v["receiver_id"])
    message = "<xml><Content><![CDATA[您的投诉已受理]]></Content></xml>".encode()
    for size in (0, 1, 11, 12, 31, 32, 33, 1000):   # every padding length, including a whole block
        data = message + b"x" * size
        assert crypto.decrypt(crypto.encrypt(data)) == data
    env = xmlmsg.parse(crypto.envelope(message, "1409659813", "42"))
    crypto.check(env["TimeStamp"], env["Nonce"], env["Encrypt"], env["MsgSignature"])
    assert crypto.decrypt(env["Encrypt"]) == message


def test_known_random_prefix_gives_known_ciphertext():
    # Encryption is deterministic given the 16 random bytes: decrypting the vector and re-encrypting
    # with its own prefix must give the vector back, byte for byte.
    import base64
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
    v = VECTORS["wecom_echostr"]
    key = base64.b64decode(v["encoding_aes_key"] + "=")
    dec = Cipher(algorithms.AES(key), modes.CBC(key[:16])).decryptor()
    prefix = (dec.update(base64.b64decode(v["encrypt"])) + dec.finalize())[:16]
    crypto = WechatCrypto(v["token"], v["encoding_aes_key"], v["receiver_id"])
    assert crypto.encrypt(v["plaintext"].encode(), random16=prefix) == v["encrypt"]


@pytest.mark.parametrize("garbage", ["", "not base64!", "AAAA", "A" * 43 + "=", "QUJD" * 5])
def test_malformed_ciphertext_raises_signature_error(garbage):
    v = VECTORS["wecom_echostr"]
    crypto = WechatCrypto(v["token"], v["encoding_aes_key"], v["receiver_id"])
    with pytest.raises(SignatureError):
        crypto.decrypt(garbage)


def test_bad_encoding_aes_key_is_refused():
    with pytest.raises(ValueError):
        WechatCrypto("t", "short", "wx1")
    with pytest.raises(ValueError):
        WechatCrypto("t", "!" * 43, "wx1")


def test_xml_parser_refuses_dtd_and_non_xml():
    with pytest.raises(xmlmsg.BadXml):
        xmlmsg.parse(b'<!DOCTYPE x [<!ENTITY a "aaaa">]><xml><Content>&a;</Content></xml>')
    with pytest.raises(xmlmsg.BadXml):
        xmlmsg.parse(b"<xml><unclosed></xml>")
    with pytest.raises(xmlmsg.BadXml):
        xmlmsg.parse(b"<other/>")
    # a customer's "<!" inside CDATA is text, not markup
    assert xmlmsg.parse(b"<xml><Content><![CDATA[<!-- hi]]></Content></xml>")["Content"] == "<!-- hi"


def test_reply_cdata_survives_closing_marker():
    reply = xmlmsg.text_reply("o1", "gh", "a]]>b<c>&", now=1)
    assert xmlmsg.parse(reply)["Content"] == "a]]>b<c>&"
