"""Sending outbox items over SMTP to a real aiosmtpd server on loopback."""
from __future__ import annotations

import pytest

from connectors.base import OutboundMessage, PermanentSendError, TransientSendError
from connectors.email.mime import parse
from connectors.email.msgid import verify
from connectors.email.smtp import SmtpSender
from intake.settings import SmtpSettings
from tests.email_servers import free_port, smtp_server, smtp_tls_server  # noqa: F401 (fixtures)

CUSTOMER = {"address": "zhang@example.cn", "name": "张三", "message_id": "<c1@example.cn>",
            "references": ["<c0@example.cn>", "<c1@example.cn>"], "subject": "冰箱坏了"}


def _ack(**over) -> OutboundMessage:
    payload = {"subject": "[20261122-CS-0001] 您的投诉已受理", "number": "20261122-CS-0001", "template": "ack",
               "automatic": True, "urgency": "P1", "response_due": "2026-11-23T02:00:00+00:00",
               "text": "您好，您的投诉已受理，编号 20261122-CS-0001。"}
    fields = dict(id=7, channel="email", kind="ack", reply_to=CUSTOMER, payload=payload, dedupe_key="ack:1")
    fields.update(over)
    return OutboundMessage(**fields)


def _sender(server, **over) -> SmtpSender:
    kw = dict(host=server.host, port=server.port, sender="某某客服中心 <cs@kesu.example>", tls="none")
    kw.update(over)
    return SmtpSender(SmtpSettings(**kw), tls_context=getattr(server, "tls_client_context", None), timeout=10)


async def test_an_acknowledgement_arrives_threaded_signed_and_marked_automatic(smtp_server):
    result = await _sender(smtp_server).send(_ack())
    [got] = await smtp_server.recorder.wait_for(1)
    msg = got.message
    assert got.mail_from == "cs@kesu.example" and got.rcpt_tos == ["zhang@example.cn"]
    assert msg["Message-ID"] == result.external_id
    assert verify(result.external_id) == (True, "20261122-CS-0001")
    assert msg["In-Reply-To"] == "<c1@example.cn>"
    assert msg["References"] == "<c0@example.cn> <c1@example.cn>"
    assert msg["Auto-Submitted"] == "auto-replied"
    assert "[20261122-CS-0001]" in msg["Subject"] and "受理" in msg["Subject"]
    body = msg.get_content()
    assert "张三，您好" in body and "编号 20261122-CS-0001" in body and "2026-11-23 10:00" in body
    assert "某某客服中心" in str(msg["From"])


async def test_our_message_read_back_is_recognised_as_ours(smtp_server):
    await _sender(smtp_server).send(_ack())
    [got] = await smtp_server.recorder.wait_for(1)
    assert parse(got.data).ours


async def test_a_retried_item_keeps_its_message_id_and_another_item_gets_a_new_one(smtp_server):
    sender = _sender(smtp_server)
    first, again = await sender.send(_ack()), await sender.send(_ack(attempts=1))
    other = await sender.send(_ack(id=8, dedupe_key="ack:2"))
    assert first.external_id == again.external_id != other.external_id


async def test_an_agent_reply_is_not_marked_automatic_and_the_number_is_added_to_the_subject(smtp_server):
    item = _ack(kind="reply", payload={"subject": "关于退款", "number": "20261122-CS-0001", "template": "reply",
                                       "automatic": False, "text": "退款已经原路退回，请查收。"})
    await _sender(smtp_server).send(item)
    [got] = await smtp_server.recorder.wait_for(1)
    assert got.message["Auto-Submitted"] is None
    assert got.message["Subject"] == "[20261122-CS-0001] 关于退款"
    assert "退款已经原路退回" in got.message.get_content()


async def test_an_unknown_template_falls_back_to_the_payload_text(smtp_server):
    item = _ack(kind="welcome", payload={"text": "欢迎", "template": "no-such-template", "number": "20261122-CS-0001"})
    await _sender(smtp_server).send(item)
    [got] = await smtp_server.recorder.wait_for(1)
    assert "欢迎" in got.message.get_content()


@pytest.mark.parametrize("reply, error", [
    ("550 5.1.1 no such user", PermanentSendError),
    ("451 4.3.0 try again later", TransientSendError),
])
async def test_recipient_refusals_are_permanent_for_5xx_and_transient_for_4xx(smtp_server, reply, error):
    smtp_server.recorder.rcpt_replies["zhang@"] = reply
    with pytest.raises(error, match=reply.split()[0]):
        await _sender(smtp_server).send(_ack())
    assert smtp_server.recorder.snapshot() == []


@pytest.mark.parametrize("reply, error", [
    ("554 5.6.0 message rejected", PermanentSendError),
    ("452 4.3.1 insufficient storage", TransientSendError),
])
async def test_data_refusals_are_classified_by_code(smtp_server, reply, error):
    smtp_server.recorder.data_reply = reply
    with pytest.raises(error):
        await _sender(smtp_server).send(_ack())


async def test_a_closed_port_is_transient():
    sender = SmtpSender(SmtpSettings(host="127.0.0.1", port=free_port(), sender="cs@kesu.example", tls="none"),
                        timeout=5)
    with pytest.raises(TransientSendError):
        await sender.send(_ack())


async def test_no_address_to_answer_to_is_permanent(smtp_server):
    with pytest.raises(PermanentSendError, match="no e-mail address"):
        await _sender(smtp_server).send(_ack(reply_to={"address": "not an address"}))


async def test_starttls_and_auth_from_settings(smtp_tls_server):
    ok = _sender(smtp_tls_server, tls="starttls", user="kesu", password="secret")
    result = await ok.send(_ack())
    [got] = await smtp_tls_server.recorder.wait_for(1)
    assert got.message["Message-ID"] == result.external_id
    wrong = _sender(smtp_tls_server, tls="starttls", user="kesu", password="wrong")
    with pytest.raises(TransientSendError, match="authentication failed"):
        await wrong.send(_ack(id=9, dedupe_key="ack:9"))


async def test_plain_connection_to_a_server_requiring_starttls_is_refused_permanently(smtp_tls_server):
    with pytest.raises(PermanentSendError, match="530"):
        await _sender(smtp_tls_server, tls="none").send(_ack())


def test_a_sender_setting_that_is_not_an_address_stops_the_start():
    with pytest.raises(ValueError, match="smtp.sender"):
        SmtpSender(SmtpSettings(host="h", sender="nobody"))
