"""Durable timers on both engines: warnings and escalations, progress messages, urgency changes,
and firing after a restart (a crash mid-batch loses and repeats nothing)."""
from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from models import (AuditEvent, Complaint, Escalation, OutboxItem, Timer, WorkTask, make_engine, make_sessionmaker,
                    utcnow)
from tests.integration.test_workflow_loop import ENV, load, new_complaint, people
from workflow import scheduler as scheduler_module
from workflow.agents import create_agent
from workflow.operations import reply, review
from workflow.scheduler import Scheduler


def base():
    # Outbox rows (the acknowledgement) are stamped with the wall clock: start the story now.
    return utcnow().replace(microsecond=0)


async def count(sm, model, *where):
    async with sm() as s:
        return await s.scalar(select(func.count()).select_from(model).where(*where))


async def test_response_warning_then_breach_escalates_to_supervisor(sessionmaker, keyring):
    t = base()
    c = await new_complaint(sessionmaker, keyring, "m1", received_at=t)        # P2: respond within 8 h
    sched = Scheduler(sessionmaker, ENV)
    await sched.run_once(t + timedelta(hours=6))
    assert await count(sessionmaker, Escalation) == 0
    assert await sched.run_once(t + timedelta(hours=6, minutes=25)) == 1        # 80 % of 8 h = 6 h 24 min
    async with sessionmaker() as s:
        warning = await s.scalar(select(Escalation))
        assert (warning.kind, warning.level) == ("response_warning", "agent")
        kinds = set((await s.scalars(select(Timer.kind).where(Timer.fired_at.is_(None)))).all())
        assert kinds == {"response_breach", "resolution_warning", "progress"}
    await sched.run_once(t + timedelta(hours=8))
    async with sessionmaker() as s:
        breach = await s.scalar(select(Escalation).where(Escalation.kind == "response_breach"))
        assert breach.level == "supervisor" and breach.department_code == c.department_code
        assert await s.scalar(select(AuditEvent.after).where(AuditEvent.action == "escalated")) == {
            "escalation": "supervisor", "kind": "response_breach"}


async def test_a_response_in_time_stops_the_escalation_and_resolution_breach_goes_to_manager(sessionmaker, keyring):
    t = base()
    who = await people(sessionmaker)
    c = await new_complaint(sessionmaker, keyring, "m1", "退款还没到账", received_at=t)   # P1: 4 h / 48 h
    sched = Scheduler(sessionmaker, ENV)
    await sched.run_once(t + timedelta(hours=3, minutes=13))                  # response warning
    async with sessionmaker() as s:
        complaint = await s.get(Complaint, c.id)
        await reply(s, complaint, who["max"], "您好，已收到，正在核实", t + timedelta(hours=3, minutes=30))
        await s.commit()
    await sched.run_once(t + timedelta(hours=4, minutes=1))
    assert await count(sessionmaker, Escalation, Escalation.kind == "response_breach") == 0
    await sched.run_once(t + timedelta(hours=38, minutes=25))                 # 80 % of 48 h
    await sched.run_once(t + timedelta(hours=48))
    async with sessionmaker() as s:
        levels = dict((await s.execute(select(Escalation.kind, Escalation.level))).all())
    assert levels["resolution_breach"] == "manager" and levels["resolution_warning"] == "agent"


async def test_progress_every_24_hours_unless_someone_wrote(sessionmaker, keyring):
    t = base()
    who = await people(sessionmaker)
    c = await new_complaint(sessionmaker, keyring, "m1", received_at=t)
    sched = Scheduler(sessionmaker, ENV)
    await sched.run_once(t + timedelta(hours=7))           # warning: starts the progress clock
    await sched.run_once(t + timedelta(hours=24, minutes=1))
    async with sessionmaker() as s:
        rows = (await s.scalars(select(OutboxItem).where(OutboxItem.kind == "progress"))).all()
        assert len(rows) == 1
        p = rows[0]
        assert p.channel == "email" and p.reply_to == {"address": "li@example.com"}
        assert p.payload["template"] == "progress" and p.payload["automatic"] is True
        assert p.payload["author"] == "system" and p.payload["subject"] == f"[{c.number}] 处理进展"
    async with sessionmaker() as s:     # an agent writes at 30 h: no progress message at 48 h
        await reply(s, await s.get(Complaint, c.id), who["max"], "正在联系快递公司", t + timedelta(hours=30))
        await s.commit()
    await sched.run_once(t + timedelta(hours=48, minutes=2))
    assert await count(sessionmaker, OutboxItem, OutboxItem.kind == "progress") == 1
    await sched.run_once(t + timedelta(hours=54, minutes=2))
    assert await count(sessionmaker, OutboxItem, OutboxItem.kind == "progress") == 2


async def test_p0_progress_every_8_hours_and_phone_complaints_need_a_call(sessionmaker, keyring):
    t = base()
    c = await new_complaint(sessionmaker, keyring, "p1", "孩子吃了以后中毒住院", channel="phone",
                            handle="13812345678", received_at=t)
    assert (await load(sessionmaker, c.number)).urgency == "P0"
    sched = Scheduler(sessionmaker, ENV)
    for hours in (1.7, 8.1, 16.2):
        await sched.run_once(t + timedelta(hours=hours))
    async with sessionmaker() as s:
        tasks = (await s.scalars(select(WorkTask).where(WorkTask.kind == "call_customer"))).all()
        assert len(tasks) == 2 and "处理进展" in tasks[0].reason
        assert await s.scalar(select(func.count()).select_from(OutboxItem)) == 0
        assert await s.scalar(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.action == "call_needed")) == 2


async def test_a_possible_p0_left_unreviewed_goes_to_the_supervisor_after_p0_response_time(sessionmaker, keyring):
    t = base()
    watched = await new_complaint(sessionmaker, keyring, "m1", "快递刚送到的充电宝在冒烟", received_at=t)
    checked = await new_complaint(sessionmaker, keyring, "m2", "快递送来的台灯插上电就冒烟",
                                  handle="wang@example.com", received_at=t)
    assert (watched.urgency, watched.p0_watch, checked.p0_watch) == ("P1", True, True)
    async with sessionmaker() as s:
        agent, _ = await create_agent(s, "amy", "agent", "LG")
        await review(s, await s.get(Complaint, checked.id), agent, ENV, "logistics", "P1", t + timedelta(minutes=30))
        await s.commit()
    sched = Scheduler(sessionmaker, ENV)
    await sched.run_once(t + timedelta(hours=1, minutes=59))
    assert await count(sessionmaker, Escalation, Escalation.kind == "p0_watch_unreviewed") == 0
    await sched.run_once(t + timedelta(hours=2))
    async with sessionmaker() as s:
        rows = (await s.execute(select(Escalation.complaint_id, Escalation.level)
                                .where(Escalation.kind == "p0_watch_unreviewed"))).all()
    assert rows == [(watched.id, "supervisor")]     # the reviewed one is not escalated


async def test_changing_the_urgency_recomputes_deadlines_and_timers(sessionmaker, keyring):
    t = base()
    c = await new_complaint(sessionmaker, keyring, "m1", received_at=t)        # P2
    async with sessionmaker() as s:
        agent, _ = await create_agent(s, "amy", "agent", "LG")
        await review(s, await s.get(Complaint, c.id), agent, ENV, "logistics", "P0", t + timedelta(minutes=5))
        await s.commit()
    c = await load(sessionmaker, c.number)
    assert (c.urgency, c.response_due, c.resolve_due) == ("P0", t + timedelta(hours=2), t + timedelta(hours=24))
    async with sessionmaker() as s:
        pending = (await s.scalars(select(Timer).where(Timer.fired_at.is_(None), Timer.cancelled.is_(False)))).all()
        assert {(x.kind, x.due_at) for x in pending} == {("response_warning", t + timedelta(minutes=96)),
                                                         ("resolution_warning", t + timedelta(hours=19, minutes=12))}
    sched = Scheduler(sessionmaker, ENV)
    await sched.run_once(t + timedelta(hours=1, minutes=37))   # the P0 warning fires
    await sched.run_once(t + timedelta(hours=2))
    await sched.run_once(t + timedelta(hours=6, minutes=30))   # the cancelled P2 warning retires without effect
    async with sessionmaker() as s:
        assert await s.scalar(select(Escalation.level).where(Escalation.kind == "response_breach")) == "supervisor"
        outcomes = dict((await s.execute(select(Timer.dedupe_key, Timer.payload)
                                         .where(Timer.fired_at.is_not(None)))).all())
    assert outcomes[f"response_warning:{c.id}"]["outcome"] == "cancelled"
    assert outcomes[f"response_warning:{c.id}:r1"]["outcome"] == "warned"


async def test_a_crash_mid_batch_loses_and_repeats_nothing(sessionmaker, db_url, keyring, monkeypatch):
    t = base()
    for i in range(6):
        await new_complaint(sessionmaker, keyring, f"m{i}", f"第{i}个快递没到", handle=f"c{i}@example.com",
                            received_at=t)
    real = scheduler_module.HANDLERS["progress"]
    calls = []

    async def dies_on_the_fourth(session, timer, complaint, env, now):
        calls.append(timer.id)
        if len(calls) == 4:
            raise KeyboardInterrupt   # not an Exception: like a kill, nothing of the batch may commit
        return await real(session, timer, complaint, env, now)

    later = t + timedelta(hours=25)
    await Scheduler(sessionmaker, ENV).run_once(t + timedelta(hours=7))        # warnings; progress timers set
    monkeypatch.setitem(scheduler_module.HANDLERS, "progress", dies_on_the_fourth)
    with pytest.raises(KeyboardInterrupt):
        await Scheduler(sessionmaker, ENV).run_once(later)
    assert await count(sessionmaker, OutboxItem, OutboxItem.kind == "progress") == 0
    monkeypatch.setitem(scheduler_module.HANDLERS, "progress", real)
    # a new process: its own engine and scheduler
    engine = make_engine(db_url)
    try:
        sm = make_sessionmaker(engine)
        sched = Scheduler(sm, ENV, batch=4)
        while await sched.run_once(later):
            pass
        assert await count(sm, OutboxItem, OutboxItem.kind == "progress") == 6
        assert await count(sm, Timer, Timer.kind == "progress", Timer.fired_at.is_(None)) == 6   # the next ones
        assert await sched.run_once(later) == 0
    finally:
        await engine.dispose()


async def test_two_schedulers_share_the_work_without_firing_twice(sessionmaker, db_url, keyring):
    t = base()
    for i in range(8):
        await new_complaint(sessionmaker, keyring, f"m{i}", f"第{i}个快递没到", handle=f"c{i}@example.com",
                            received_at=t)
    engines = [make_engine(db_url) for _ in range(2)]
    try:
        scheds = [Scheduler(make_sessionmaker(e), ENV, batch=3) for e in engines]

        async def drain(s):
            while await s.run_once(t + timedelta(hours=25)):
                await asyncio.sleep(0)

        await asyncio.gather(*(drain(s) for s in scheds))
        assert await count(sessionmaker, OutboxItem, OutboxItem.kind == "progress") == 8
        assert await count(sessionmaker, Escalation, Escalation.kind == "response_breach") == 8
    finally:
        for e in engines:
            await e.dispose()


async def test_a_failing_handler_is_retried_later_then_given_up(sessionmaker, keyring, monkeypatch):
    t = base()
    await new_complaint(sessionmaker, keyring, "m1", received_at=t)

    async def broken(session, timer, complaint, env, now):
        raise RuntimeError("bug")

    monkeypatch.setitem(scheduler_module.HANDLERS, "response_warning", broken)
    sched = Scheduler(sessionmaker, ENV)
    now = t + timedelta(hours=7)
    for _ in range(5):
        await sched.run_once(now)
        async with sessionmaker() as s:
            timer = await s.scalar(select(Timer).where(Timer.kind == "response_warning"))
        now = max(now, timer.due_at)
    assert timer.fired_at is not None and timer.payload["outcome"] == "failed"
    assert timer.payload["attempts"] == 5 and "bug" in timer.payload["error"]
