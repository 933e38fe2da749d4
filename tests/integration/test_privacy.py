"""Personal data is encrypted at rest and masked in logs."""
from __future__ import annotations

import logging
from datetime import datetime, timezone
from pathlib import Path

import aiohttp
from sqlalchemy import select

from connectors.base import InboundMessage, Sender
from intake.daemon import Kesu
from models import Customer, CustomerIdentity
from tests.conftest import daemon_settings
from tests.fakes import KeywordClassifier
from workflow.agents import create_agent

PHONE, EMAIL, NAME = "13912345678", "zhang.wei@example.com", "张伟"
MAIL_SENDER = "li.na@customers.example"


async def test_database_file_holds_no_plaintext_contact(sqlite_url, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    settings = daemon_settings(sqlite_url, tmp_path)
    async with Kesu(settings, classifier=KeywordClassifier()) as kesu:
        async with kesu.runtime.sessionmaker() as s:
            _, token = await create_agent(s, "amy", "agent", "LG")
            await s.commit()
        async with aiohttp.ClientSession() as http:
            async with http.post(f"http://127.0.0.1:{kesu.http_port}/api/complaints",
                                 headers={"Authorization": f"Bearer {token}"},
                                 json={"channel": "phone", "text": "快递一直没送到",
                                       "customer": {"name": NAME, "phone": PHONE, "email": EMAIL}}) as r:
                assert r.status == 201
        raw = f"From: {MAIL_SENDER}\r\nSubject: complaint\r\n\r\nparcel lost".encode()
        await kesu.runtime.intake.accept(InboundMessage(
            channel="email", external_id="<p1@customers.example>", sender=Sender(MAIL_SENDER, email=MAIL_SENDER),
            text="包裹丢了", received_at=datetime.now(timezone.utc), raw=raw, reply_to={"address": MAIL_SENDER}))
        await kesu.runtime.intake.process_now("email", "<p1@customers.example>")
        async with kesu.runtime.sessionmaker() as s:   # readable through the application
            customers = (await s.scalars(select(Customer).order_by(Customer.id))).all()
            assert [(c.name, c.phone, c.email) for c in customers] == [(NAME, PHONE, EMAIL), (None, None, MAIL_SENDER)]
            assert len((await s.scalars(select(CustomerIdentity))).all()) == 3
    db_file = Path(sqlite_url.split("///", 1)[1])
    stored = b"".join(p.read_bytes() for p in db_file.parent.glob(db_file.name + "*"))
    for secret in (PHONE, EMAIL, MAIL_SENDER, NAME):
        assert secret.encode() not in stored, f"{secret} stored in plaintext"
    assert PHONE not in caplog.text and EMAIL not in caplog.text and MAIL_SENDER not in caplog.text
