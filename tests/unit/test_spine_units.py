"""Small pure pieces of the spine: numbers, masking, identities, text cleaning, keys."""
from __future__ import annotations

import os
import stat
from datetime import datetime, timezone

import pytest

from connectors.base import InboundMessage, Sender
from intake.inbox import message_from_dict, message_to_dict
from intake.numbering import find_numbers, format_number, shanghai_day
from intake.steps.customer import identities_of
from intake.steps.normalize import clean_text
from models.crypto import Keyring, load_master_key, mask


def test_number_format_and_detection():
    assert format_number("20261122", "CS", 1) == "20261122-CS-0001"
    assert format_number("20261122", "CS", 12345) == "20261122-CS-12345"
    assert find_numbers("Re: [20261122-CS-0001] 还是没解决 20261123-QA-0042") == ["20261122-CS-0001", "20261123-QA-0042"]
    assert find_numbers("订单 2026112212345") == []


def test_number_date_is_shanghai_day():
    assert shanghai_day(datetime(2026, 11, 22, 16, 30, tzinfo=timezone.utc)) == "20261123"
    assert shanghai_day(datetime(2026, 11, 22, 15, 59, tzinfo=timezone.utc)) == "20261122"


def test_mask_phone_and_email():
    assert mask("请打13812345678或发 zhang@example.com") == "请打138****5678或发 z***@example.com"
    assert mask(None) is None


def test_blind_index_normalizes_contacts():
    ring = Keyring(b"x" * 32)
    assert ring.blind_index("phone", "+86 138-1234-5678") == ring.blind_index("phone", "13812345678")
    assert ring.blind_index("email", "Li@Example.com ") == ring.blind_index("email", "li@example.com")
    assert ring.blind_index("email", "a@b.c") != Keyring(b"y" * 32).blind_index("email", "a@b.c")


def test_encryption_round_trip_and_tamper_detection():
    ring = Keyring(b"x" * 32)
    blob = ring.encrypt("王芳 13812345678".encode())
    assert b"13812345678" not in blob and ring.decrypt(blob).decode() == "王芳 13812345678"
    with pytest.raises(Exception):
        ring.decrypt(blob[:-1] + bytes([blob[-1] ^ 1]))


def test_key_file_is_created_once_with_mode_0600(tmp_path):
    path = tmp_path / "kesu.key"
    key = load_master_key(None, path)
    assert len(key) == 32 and stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert load_master_key(None, path) == key


def test_identities_of_each_channel():
    def m(channel, **sender):
        return InboundMessage(channel=channel, external_id="x", sender=Sender(**sender), text="t",
                              received_at=datetime.now(timezone.utc))
    assert identities_of(m("email", handle="a@b.c", email="a@b.c")) == [("email", "a@b.c")]
    assert identities_of(m("wechat", handle="oABC", phone="13812345678")) == [("wechat", "oABC"), ("phone", "13812345678")]
    assert identities_of(m("phone", handle="13812345678", phone="13812345678")) == [("phone", "13812345678")]
    assert identities_of(m("webhook:shop", handle="u1")) == [("webhook:shop", "u1")]


def test_clean_text_drops_controls_and_blank_runs():
    assert clean_text("\ufeff你好\x00\r\n\r\n\r\n\r\n世界\u200b ") == "你好\n\n世界"


def test_inbound_message_round_trips_through_the_inbox_format():
    from connectors.base import Attachment, MessageKind
    msg = InboundMessage(channel="email", external_id="<1@x>", sender=Sender("a@b.c", "甲", "a@b.c"), text="正文",
                         received_at=datetime(2026, 11, 23, tzinfo=timezone.utc), subject="主题",
                         attachments=(Attachment.from_bytes("p.png", "image/png", b"\x89PNG"),
                                      Attachment.from_bytes("big.bin", "application/octet-stream", b"x" * 10, limit=5)),
                         thread_refs=("20261122-CS-0001",), raw=b"raw", reply_to={"address": "a@b.c"},
                         kind=MessageKind.AUTO_REPLY, meta={"product": "手机"})
    back = message_from_dict(message_to_dict(msg), b"raw")
    assert back == msg
    assert back.attachments[1].data is None and "limit" in back.attachments[1].note
