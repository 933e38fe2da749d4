"""Reading aioimaplib's FETCH response lines: UID, INTERNALDATE and the literal."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from connectors.email.imap import parse_fetch, uid_set


def response(*items: tuple[int, bytes, bytes]) -> list:
    lines: list = []
    for uid, date, raw in items:
        lines.append(b'%d FETCH (UID %d INTERNALDATE "%s" BODY[] {%d}' % (uid, uid, date, len(raw)))
        lines.append(bytearray(raw))
        lines.append(b")")
    return lines + [b"Fetch completed."]


def test_uid_date_and_bytes_of_each_message_are_read():
    got = parse_fetch(response((7, b"23-Nov-2026 17:30:00 +0800", b"From: a@x.cn\r\n\r\nhi"),
                               (9, b" 3-Jan-2026 01:02:03 -0530", b"From: b@x.cn\r\n\r\nho")))
    assert got == [
        (7, datetime(2026, 11, 23, 17, 30, tzinfo=timezone(timedelta(hours=8))), b"From: a@x.cn\r\n\r\nhi"),
        (9, datetime(2026, 1, 3, 1, 2, 3, tzinfo=timezone(-timedelta(hours=5, minutes=30))), b"From: b@x.cn\r\n\r\nho"),
    ]


def test_an_impossible_or_garbled_internal_date_is_no_date_not_an_error():
    got = parse_fetch(response((1, b"31-Feb-2026 00:00:00 +0000", b"x"), (2, b"23-Xyz-2026 17:30:00 +0800", b"y"),
                               (3, b"yesterday", b"z")))
    assert [(uid, when) for uid, when, _ in got] == [(1, None), (2, None), (3, None)]


def test_uid_sets_are_compressed_into_ranges():
    assert uid_set([5, 1, 2, 3, 8, 7]) == "1:3,5,7:8" and uid_set([4]) == "4" and uid_set([]) == ""
