"""`peek` reads a message's key from its headers exactly as the full parser does (the poller
commits under that key; a re-fetch after a crash or a UIDVALIDITY change must find it again)."""
from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from connectors.email.deferred import peek
from connectors.email.mime import parse

CORPUS = Path(__file__).resolve().parents[3] / "shared" / "data" / "mail"


def test_every_corpus_mail_gets_the_key_the_full_parser_gives_it():
    raws = [p.read_bytes() for p in sorted(CORPUS.rglob("*")) if p.is_file()]
    assert len(raws) > 100
    for raw in raws:
        assert peek(raw).external_id == parse(raw).external_id


@pytest.mark.parametrize("raw, expected", [
    (b"Message-ID: <a@x.cn>\r\nFrom: a@x.cn\r\n\r\nbody", "<a@x.cn>"),
    (b"message-id:\r\n <folded@x.cn>\r\nFrom: a@x.cn\r\n\r\nbody", "<folded@x.cn>"),
    (b"From a@x.cn Mon Jan  1 00:00:00 2026\nMessage-Id: <mbox@x.cn>\nFrom: a@x.cn\n\nbody", "<mbox@x.cn>"),
    # a line that is no header ends the header block: what follows is body, as the parser reads it
    (b"From: a@x.cn\r\nbroken line\r\nMessage-ID: <in-body@x.cn>\r\n\r\nbody", None),
    (b"From: a@x.cn\rMessage-ID: <after-cr@x.cn>\r\n\r\nbody", "<after-cr@x.cn>"),
    (b"Message-ID: <" + b"x" * 230 + b"@x.cn>\r\n\r\nbody", "hashed"),
    (b"no headers here at all\r\n", None),
])
def test_peek_agrees_with_the_parser_on_odd_header_blocks(raw, expected):
    key = peek(raw).external_id
    assert key == parse(raw).external_id
    if expected is None:
        assert key == "sha256:" + hashlib.sha256(raw).hexdigest()
    elif expected == "hashed":
        assert key.startswith("sha256:") and key != "sha256:" + hashlib.sha256(raw).hexdigest()
    else:
        assert key == expected
