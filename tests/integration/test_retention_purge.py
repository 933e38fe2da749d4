"""Archive, purge and a customer's export and erasure, on SQLite and PostgreSQL."""
from __future__ import annotations

import gzip
import json
import os
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from models import (Agent, AuditEvent, Complaint, ComplaintMessage, ComplaintWorkflow, Customer, CustomerIdentity,
                    Escalation, InboxItem, LabelledExample, OutboxItem, Remedy, StoredAttachment, SurveyResponse,
                    WorkTask)
from models.crypto import keyring
from workflow.reports import Month, monthly_figures
from workflow.retention import (ERASED, RetentionError, archive, erase_customer, export_customer, find_customer,
                                latest_cutoff, purge, read_archive)

BJ = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 11, 23, 10, 0, tzinfo=BJ)          # retention 3 years: cut-off at most 2023-11-23
OLD_TEXT = "旧投诉：热水器漏水，联系人李四 13700001111"
YOUNG_TEXT = "新投诉：热水器又坏了"


def _complaint(number, customer, received, status, text, *, product="热水器", closed=True):
    return Complaint(number=number, channel="email", status=status, category="product_quality", urgency="P1",
                     department_code="QA", text=text, subject="热水器", product=product, region="杭州",
                     order_no="ORD-9", reply_to={"email": "lisi@example.com"}, customer_id=customer.id,
                     received_at=received, registered_at=received, response_due=received + timedelta(hours=4),
                     resolve_due=received + timedelta(hours=48), first_response_at=received + timedelta(hours=1),
                     resolved_at=received + timedelta(hours=20),
                     closed_at=received + timedelta(days=5) if closed else None, suggestion={"why": text[:4]},
                     trace=[{"step": "customer", "detail": "李四"}])


async def seed(session) -> dict:
    agent = Agent(name="ops", role="admin")
    lisi = Customer(name="李四", phone="13700001111", email="lisi@example.com", address="杭州西湖路1号", region="杭州")
    wang = Customer(name="王五", phone="13600002222", region="杭州")
    session.add_all([agent, lisi, wang])
    await session.flush()
    ring = keyring()
    session.add_all([
        CustomerIdentity(customer_id=lisi.id, kind="phone", value="13700001111",
                         value_hash=ring.blind_index("phone", "13700001111")),
        CustomerIdentity(customer_id=lisi.id, kind="email", value="lisi@example.com",
                         value_hash=ring.blind_index("email", "lisi@example.com")),
        CustomerIdentity(customer_id=wang.id, kind="phone", value="13600002222",
                         value_hash=ring.blind_index("phone", "13600002222"))])
    old = _complaint("OLD-1", lisi, datetime(2022, 6, 10, 9, 0, tzinfo=BJ), "closed", OLD_TEXT)
    old_wang = _complaint("OLD-2", wang, datetime(2022, 6, 12, 9, 0, tzinfo=BJ), "closed", "王五的旧投诉")
    young_wang = _complaint("NEW-1", wang, datetime(2025, 3, 1, 9, 0, tzinfo=BJ), "closed", YOUNG_TEXT)
    open_wang = _complaint("NEW-2", wang, datetime(2026, 11, 1, 9, 0, tzinfo=BJ), "in_progress", "王五的新投诉",
                           closed=False)
    session.add_all([old, old_wang, young_wang, open_wang])
    await session.flush()
    for c in (old, old_wang, young_wang, open_wang):
        session.add(ComplaintWorkflow(complaint_id=c.id, disputes=1, resolutions=1, progress_sent=0, sla_revision=0,
                                      response_minutes=60, response_target_minutes=240, resolve_minutes=1200,
                                      resolve_target_minutes=2880))
        msg = ComplaintMessage(complaint_id=c.id, direction="in", channel="email", author="customer", subject="热水器",
                               text=c.text, created_at=c.received_at)
        session.add(msg)
        await session.flush()
        session.add(StoredAttachment(message_id=msg.id, name="photo.jpg", content_type="image/jpeg", size=3,
                                     sha256="0" * 64, data=b"jpg"))
        session.add(SurveyResponse(complaint_id=c.id, channel="email", efficiency=2, attitude=4, solution=3,
                                   comment="李四说还行", created_at=c.received_at + timedelta(days=3)))
        session.add(Remedy(complaint_id=c.id, kind="refund", amount_cents=8800, department_code="QA",
                           category="product_quality", recorded_at=c.received_at + timedelta(days=1)))
        session.add(LabelledExample(complaint_id=c.id, text=c.text, category="product_quality", urgency="P1",
                                    agent_id=agent.id))
        session.add(InboxItem(channel="email", external_id=f"mid-{c.number}", kind="message", status="done",
                              message={"text": c.text}, raw=b"From: lisi@example.com", received_at=c.received_at,
                              complaint_id=c.id))
        session.add(OutboxItem(channel="email", kind="ack", complaint_id=c.id, reply_to={"email": "lisi@example.com"},
                               payload={"text": "您好李四"}, dedupe_key=f"ack:{c.number}", status="sent"))
        session.add(AuditEvent(actor="customer", action="dispute", complaint_id=c.id, at=c.received_at,
                               detail="李四：不满意", before={"status": "resolved"}, after={"status": "disputed"}))
        session.add(Escalation(complaint_id=c.id, kind="dispute", level="supervisor", department_code="QA",
                               detail="客户对处理结果有异议：李四不满意"))
        session.add(WorkTask(complaint_id=c.id, kind="call_customer", role="agent", department_code="QA",
                             reason=f"请致电客户：{c.text}", due_at=c.received_at, note="打给13700001111"))
    await session.flush()
    return {"old": old.id, "old_wang": old_wang.id, "young": young_wang.id, "lisi": lisi.id, "wang": wang.id}


@pytest.fixture
async def data(sessionmaker):
    async with sessionmaker() as session:
        ids = await seed(session)
        await session.commit()
    return ids


async def _audits(session, action):
    return await session.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.action == action))


def test_latest_cutoff_is_years_before_today_in_beijing():
    assert latest_cutoff(NOW, 3) == date(2023, 11, 23)
    assert latest_cutoff(datetime(2028, 2, 29, 12, tzinfo=BJ), 1) == date(2027, 2, 28)
    assert latest_cutoff(datetime(2026, 11, 22, 17, 0, tzinfo=ZoneInfo("UTC")), 3) == date(2023, 11, 23)


async def test_purge_and_archive_are_refused_inside_the_retention_period(sessionmaker, data, tmp_path):
    async with sessionmaker() as session:
        with pytest.raises(RetentionError, match="retention period"):
            await purge(session, date(2023, 11, 24), now=NOW, years=3)
        with pytest.raises(RetentionError, match="2023-11-23"):
            await archive(session, date(2025, 6, 1), tmp_path / "a.gz", now=NOW, years=3)
        with pytest.raises(RetentionError):
            await purge(session, date(2022, 1, 1), now=NOW, years=5)
        await session.commit()
    assert not (tmp_path / "a.gz").exists()
    async with sessionmaker() as session:
        old = await session.get(Complaint, data["old"])
        assert old.text == OLD_TEXT and old.customer_id == data["lisi"]
        assert await _audits(session, "purge") == 0


async def test_archive_holds_the_old_complaints_encrypted_and_describes_itself(sessionmaker, data, tmp_path):
    path = tmp_path / "kesu-archive-2023.jsonl.gz"
    async with sessionmaker() as session:
        result = await archive(session, date(2023, 1, 1), path, now=NOW, years=3)
        await session.commit()
    assert result.complaints == 2
    assert oct(os.stat(path).st_mode & 0o777) == "0o600"
    raw = gzip.decompress(path.read_bytes()).decode()
    assert "李四" not in raw and "13700001111" not in raw          # personal data stays ciphertext
    lines = list(read_archive(path))
    manifest, rows, trailer = lines[0]["manifest"], lines[1:-1], lines[-1]["end"]
    assert manifest["format"] == "kesu-archive" and manifest["closed_before"] == "2023-01-01"
    assert manifest["tables"]["complaints"]["personal"]["text"] == "text"
    assert "trace" in manifest["tables"]["complaints"]["sealed"]
    assert "category" in manifest["tables"]["complaints"]["columns"]
    numbers = sorted(r["row"]["number"] for r in rows if r["table"] == "complaints")
    assert numbers == ["OLD-1", "OLD-2"]
    assert trailer["rows"]["complaints"] == 2 and trailer["rows"]["complaint_messages"] == 2
    assert trailer["rows"]["attachments"] == 2 and trailer["rows"]["customers"] == 2
    assert trailer["rows"]["customer_identities"] == 3 and trailer["rows"]["audit_events"] == 2
    opened = [r for r in read_archive(path, decrypt=True) if r.get("table") == "complaints"]
    assert OLD_TEXT in [r["row"]["text"] for r in opened]
    assert {"step": "customer", "detail": "李四"} in [r["row"]["trace"][0] for r in opened]
    async with sessionmaker() as session:
        assert await _audits(session, "archive") == 1


async def test_a_damaged_archive_is_detected(sessionmaker, data, tmp_path):
    path = tmp_path / "a.gz"
    async with sessionmaker() as session:
        await archive(session, date(2023, 1, 1), path, now=NOW, years=3)
        await session.commit()
    lines = gzip.decompress(path.read_bytes()).decode().splitlines()
    lines[1] = lines[1].replace("OLD-", "OLX-")
    path.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))
    with pytest.raises(RetentionError, match="checksum"):
        list(read_archive(path))


async def test_purge_erases_personal_data_and_keeps_the_statistics(sessionmaker, data):
    async with sessionmaker() as session:
        before = await monthly_figures(session, Month(2022, 6), as_of=NOW)
        counts = await purge(session, date(2023, 1, 1), now=NOW, years=3)
        await session.commit()
    assert counts["complaints"] == 2 and counts["complaint_messages"] == 2 and counts["customers"] == 1
    async with sessionmaker() as session:
        after = await monthly_figures(session, Month(2022, 6), as_of=NOW)
        old = await session.get(Complaint, data["old"])
        assert (old.text, old.subject, old.reply_to, old.order_no, old.customer_id) == (ERASED, None, None, None, None)
        assert (old.category, old.product, old.region, old.status) == ("product_quality", "热水器", "杭州", "closed")
        assert await session.scalar(select(func.count()).select_from(ComplaintMessage)
                                    .where(ComplaintMessage.complaint_id == old.id)) == 0
        assert await session.scalar(select(func.count()).select_from(StoredAttachment)) == 2   # the young ones
        survey = await session.scalar(select(SurveyResponse).where(SurveyResponse.complaint_id == old.id))
        assert (survey.comment, survey.efficiency) == (None, 2)
        inbox = await session.scalar(select(InboxItem).where(InboxItem.complaint_id == old.id))
        assert (inbox.message, inbox.raw) == ({}, None)
        outbox = await session.scalar(select(OutboxItem).where(OutboxItem.complaint_id == old.id))
        assert (outbox.payload, outbox.reply_to) == ({}, {})
        task = await session.scalar(select(WorkTask).where(WorkTask.complaint_id == old.id))
        assert (task.reason, task.note) == (ERASED, None)
        assert (await session.scalar(select(Escalation.detail).where(Escalation.complaint_id == old.id))) is None
        assert (await session.scalar(select(AuditEvent.detail).where(AuditEvent.complaint_id == old.id,
                                                                     AuditEvent.action == "dispute"))) is None
        assert await session.scalar(select(func.count()).select_from(LabelledExample)
                                    .where(LabelledExample.complaint_id == old.id)) == 0
        # 李四 had only the old complaint: gone with their identities; 王五 has younger ones: kept
        assert await session.get(Customer, data["lisi"]) is None
        assert await session.scalar(select(func.count()).select_from(CustomerIdentity)
                                    .where(CustomerIdentity.customer_id == data["lisi"])) == 0
        assert (await session.get(Customer, data["wang"])).name == "王五"
        young = await session.get(Complaint, data["young"])
        assert young.text == YOUNG_TEXT and young.customer_id == data["wang"]
        assert await _audits(session, "purge") == 1
    for key in ("volume", "distribution", "on_time", "handling", "satisfaction", "rates", "remedies", "top_products"):
        assert after[key] == before[key], key
    assert after["volume"]["total"] == 2 and after["remedies"]["amount_cents"] == 17600


async def test_customer_export_is_readable_and_complete(sessionmaker, data):
    async with sessionmaker() as session:
        customer = await find_customer(session, phone="137-0000-1111")
        exported = await export_customer(session, customer, now=NOW)
        await session.commit()
    assert exported["customer"]["name"] == "李四" and exported["customer"]["address"] == "杭州西湖路1号"
    assert {i["value"] for i in exported["identities"]} == {"13700001111", "lisi@example.com"}
    [c] = exported["complaints"]
    assert c["number"] == "OLD-1" and c["text"] == OLD_TEXT and c["messages"][0]["text"] == OLD_TEXT
    assert c["surveys"][0]["comment"] == "李四说还行" and c["remedies"] == [
        {"kind": "refund", "amount_yuan": 88.0, "at": c["remedies"][0]["at"]}]
    json.dumps(exported, ensure_ascii=False)
    async with sessionmaker() as session:
        assert await _audits(session, "customer_exported") == 1


async def test_customer_erasure_waits_for_open_complaints_then_erases_everything(sessionmaker, data):
    async with sessionmaker() as session:
        wang = await find_customer(session, customer_id=data["wang"])
        with pytest.raises(RetentionError, match="NEW-2"):
            await erase_customer(session, wang, now=NOW)
        await session.rollback()
    async with sessionmaker() as session:
        await session.execute(Complaint.__table__.update().where(Complaint.number == "NEW-2")
                              .values(status="closed", closed_at=NOW))
        await session.commit()
    async with sessionmaker() as session:
        wang = await find_customer(session, email=None, phone="13600002222")
        await erase_customer(session, wang, now=NOW)
        await session.commit()
    async with sessionmaker() as session:
        assert await session.get(Customer, data["wang"]) is None
        assert await find_customer(session, phone="13600002222") is None
        texts = (await session.scalars(select(Complaint.text).where(Complaint.number.in_(
            ["OLD-2", "NEW-1", "NEW-2"])))).all()
        assert texts == [ERASED] * 3
        assert (await session.get(Complaint, data["old"])).text == OLD_TEXT      # another customer's: untouched
        assert await _audits(session, "customer_erased") == 1
