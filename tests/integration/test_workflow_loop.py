"""The closed loop on both engines: assign → plan → approval → resolve → confirm → survey → call-back → close,
disputes, merges, plan approval limits, remedies for the monthly report, and the audit trail."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select

from connectors.base import InboundMessage, Sender
from intake.inbox import Inbox
from intake.pipeline import Services
from intake.settings import Settings
from intake.steps import default_pipeline
from intake.worker import Worker
from models import (AuditEvent, Complaint, ComplaintMessage, ComplaintWorkflow, Escalation, OutboxItem, SurveyResponse,
                    Timer, WorkTask)
from tests.fakes import KeywordClassifier
from workflow import audit, plans
from workflow.agents import create_agent
from workflow.calendar import WorkCalendar
from workflow.config import WorkflowEnv, WorkflowSettings
from workflow.lifecycle import CUSTOMER, Actor, Forbidden, TransitionRefused
from workflow.operations import perform, reply
from workflow.repeats import RepeatStep
from workflow.scheduler import Scheduler
from workflow.surveys import make_token, read_token

T0 = datetime(2026, 11, 23, 2, 0, tzinfo=timezone.utc)     # Monday 10:00 in Beijing
ENV = WorkflowEnv(WorkCalendar(), WorkflowSettings(base_url="https://kesu.example"))


def make_worker(sessionmaker, keyring):
    services = Services(settings=Settings(), calendar=WorkCalendar(), keyring=keyring,
                        outbound_channels=frozenset({"email", "webchat"}))
    pipeline = default_pipeline()
    # the pipeline's repeat step, with this test's workflow settings
    pipeline.steps = [RepeatStep(ENV.settings) if isinstance(s, RepeatStep) else s for s in pipeline.steps]
    return Worker(sessionmaker, pipeline, services, KeywordClassifier())


async def new_complaint(sessionmaker, keyring, external_id, text="快递三天还没到", *, channel="email",
                        handle="li@example.com", received_at=T0, refs=()) -> Complaint:
    inbox, worker = Inbox(sessionmaker), make_worker(sessionmaker, keyring)
    reply_to = {"address": handle} if channel == "email" else {"session": handle} if channel == "webchat" else {}
    await inbox.accept(InboundMessage(
        channel=channel, external_id=external_id, text=text, received_at=received_at, thread_refs=tuple(refs),
        sender=Sender(handle=handle, name="李雷", email=handle if "@" in handle else None,
                      phone=handle if channel == "phone" else None),
        reply_to=reply_to))
    await worker.run_once()
    async with sessionmaker() as s:
        return await s.scalar(select(Complaint).order_by(Complaint.id.desc()).limit(1))


async def people(sessionmaker):
    out = {}
    async with sessionmaker() as s:
        for name, role, dept in (("amy", "agent", "LG"), ("ann", "agent", "LG"), ("bob", "agent", "FN"),
                                 ("sue", "supervisor", "LG"), ("max", "manager", None),
                                 ("ada", "admin", None)):
            agent, _ = await create_agent(s, name, role, dept)
            out[name] = Actor.of(agent)
        await s.commit()
    return out


async def act(sessionmaker, number, action, actor, now, **params):
    async with sessionmaker() as s:
        c = await s.scalar(select(Complaint).where(Complaint.number == number))
        result = await perform(s, c, action, actor, ENV, params, now)
        await s.commit()
    return result


async def load(sessionmaker, number) -> Complaint:
    async with sessionmaker() as s:
        return await s.scalar(select(Complaint).where(Complaint.number == number))


PLAN = {"measures": [{"kind": "refund", "detail": "退还运费", "amount": "12.50"}, {"kind": "apology"}],
        "deadline": "2026-11-25T18:00", "resources": "物流部 张三"}


async def resolved(sessionmaker, keyring, who, **kw) -> str:
    c = await new_complaint(sessionmaker, keyring, "m1", **kw)
    await act(sessionmaker, c.number, "assign", who["amy"], T0)
    await act(sessionmaker, c.number, "draft_plan", who["amy"], T0, **PLAN)
    await act(sessionmaker, c.number, "approve_plan", who["sue"], T0)
    await act(sessionmaker, c.number, "resolve", who["amy"], T0 + timedelta(hours=3), result="已退还运费并致歉")
    return c.number


async def test_the_whole_loop_with_a_low_score_ends_in_a_callback_then_closes(sessionmaker, keyring):
    who = await people(sessionmaker)
    number = await resolved(sessionmaker, keyring, who)
    c = await load(sessionmaker, number)
    assert (c.status, c.assignee_id) == ("resolved", who["amy"].agent_id)
    async with sessionmaker() as s:
        result = await s.scalar(select(OutboxItem).where(OutboxItem.kind == "result"))
        assert result.channel == "email" and result.reply_to == {"address": "li@example.com"}
        assert result.payload["template"] == "result" and result.payload["number"] == number
        assert result.payload["subject"].startswith(f"[{number}]") and "已退还运费并致歉" in result.payload["text"]
        assert result.payload["author"] == f"agent:{who['amy'].agent_id}" and result.payload["automatic"] is False
        wf = await s.get(ComplaintWorkflow, c.id)
        # first response and resolution as minutes against the target
        assert (wf.response_minutes, wf.response_target_minutes) == (180, 480)
        assert (wf.resolve_minutes, wf.resolve_target_minutes) == (180, 7 * 24 * 60 + 2 * 24 * 60)
    # the customer answers "1" by e-mail (threaded by the number in the subject)
    await new_complaint(sessionmaker, keyring, "m2", "1 好的，谢谢", refs=[number])
    sched = Scheduler(sessionmaker, ENV)
    await sched.run_once(T0 + timedelta(hours=4))
    assert (await load(sessionmaker, number)).status == "confirmed"
    await sched.run_once(T0 + timedelta(hours=4, minutes=1))        # the survey timer
    async with sessionmaker() as s:
        survey = await s.scalar(select(OutboxItem).where(OutboxItem.kind == "survey"))
        assert survey.payload["template"] == "survey" and survey.payload["automatic"] is True
        link = survey.payload["link"]
        assert link.startswith("https://kesu.example/survey/") and link in survey.payload["text"]
        assert read_token(link.rsplit("/", 1)[1], T0) == c.id
    # the customer rates 2 on the link
    async with sessionmaker() as s:
        complaint = await s.get(Complaint, c.id)
        await perform(s, complaint, "record_survey", CUSTOMER, ENV,
                      {"efficiency": 4, "attitude": 2, "solution": 4, "comment": "太慢", "channel": "email"},
                      T0 + timedelta(hours=5))
        await s.commit()
    async with sessionmaker() as s:
        assert (await s.get(Complaint, c.id)).status == "surveyed"
        task = await s.scalar(select(WorkTask))
        assert (task.kind, task.role, task.department_code, task.status) == ("callback", "supervisor", "LG", "open")
        assert task.due_at == T0 + timedelta(days=1, hours=5)       # one working day later (Tuesday)
        assert await s.scalar(select(Timer.kind).where(Timer.dedupe_key == f"callback_due:{task.id}")) == "callback_due"
    from workflow.callbacks import complete
    async with sessionmaker() as s:
        task = await s.scalar(select(WorkTask))
        complaint = await s.get(Complaint, c.id)
        with pytest.raises(Forbidden):
            await complete(s, task, complaint, who["amy"], "called", T0 + timedelta(hours=6))
        await complete(s, task, complaint, who["sue"], "已回电致歉", T0 + timedelta(hours=6))
        await s.commit()
    c = await load(sessionmaker, number)
    assert c.status == "closed" and c.closed_at == T0 + timedelta(hours=6)
    async with sessionmaker() as s:
        actions = (await s.scalars(select(AuditEvent.action).where(AuditEvent.complaint_id == c.id)
                                   .order_by(AuditEvent.id))).all()
    assert actions == ["registered", "assign", "draft_plan", "approve_plan", "first_response", "resolve",
                       "customer_message", "confirm", "survey_answered", "record_survey", "callback_opened",
                       "task_done", "close"]


async def test_good_scores_close_the_complaint_and_survey_timeout_closes_without_answer(sessionmaker, keyring):
    who = await people(sessionmaker)
    number = await resolved(sessionmaker, keyring, who)
    await act(sessionmaker, number, "confirm", CUSTOMER, T0 + timedelta(hours=4))
    sched = Scheduler(sessionmaker, ENV)
    await sched.run_once(T0 + timedelta(hours=4))
    await act(sessionmaker, number, "record_survey", CUSTOMER, T0 + timedelta(hours=5), efficiency=5, attitude=4,
              solution=5)
    assert (await load(sessionmaker, number)).status == "closed"
    async with sessionmaker() as s:
        assert await s.scalar(select(func.count()).select_from(WorkTask)) == 0
    # a second complaint whose customer never answers is closed after 3 working days
    other = await new_complaint(sessionmaker, keyring, "x1", "退款还没到账", handle="wu@example.com")
    await act(sessionmaker, other.number, "assign", who["max"], T0, assignee_id=who["max"].agent_id)
    await act(sessionmaker, other.number, "draft_plan", who["max"], T0, **PLAN)
    await act(sessionmaker, other.number, "approve_plan", who["ada"], T0)
    await act(sessionmaker, other.number, "resolve", who["max"], T0, result="已退款")
    await act(sessionmaker, other.number, "confirm", CUSTOMER, T0)
    await sched.run_once(T0 + timedelta(minutes=1))
    await sched.run_once(T0 + timedelta(days=2))
    assert (await load(sessionmaker, other.number)).status == "confirmed"
    await sched.run_once(T0 + timedelta(days=3, minutes=2))   # Thursday: 3 working days after Monday
    assert (await load(sessionmaker, other.number)).status == "closed"


async def test_resolving_needs_an_approved_plan_and_no_one_approves_their_own(sessionmaker, keyring):
    who = await people(sessionmaker)
    c = await new_complaint(sessionmaker, keyring, "m1")
    with pytest.raises(TransitionRefused, match="cannot resolve"):
        await act(sessionmaker, c.number, "resolve", who["sue"], T0, result="x")
    await act(sessionmaker, c.number, "assign", who["amy"], T0)
    with pytest.raises(Forbidden, match="for themselves"):
        await act(sessionmaker, c.number, "assign", who["amy"], T0, assignee_id=who["ann"].agent_id)
    await act(sessionmaker, c.number, "start", who["amy"], T0)
    with pytest.raises(TransitionRefused, match="approved before"):
        await act(sessionmaker, c.number, "resolve", who["amy"], T0, result="x")
    await act(sessionmaker, c.number, "draft_plan", who["sue"], T0, **PLAN)
    with pytest.raises(Forbidden, match="own plan"):
        await act(sessionmaker, c.number, "approve_plan", who["sue"], T0)
    with pytest.raises(Forbidden):
        await act(sessionmaker, c.number, "approve_plan", who["amy"], T0)
    with pytest.raises(Forbidden, match="another department"):
        await act(sessionmaker, c.number, "approve_plan", who["bob"], T0)
    await act(sessionmaker, c.number, "approve_plan", who["max"], T0)
    await act(sessionmaker, c.number, "resolve", who["amy"], T0, result="done")
    assert (await load(sessionmaker, c.number)).status == "resolved"


async def test_costly_plan_needs_a_manager_too(sessionmaker, keyring):
    who = await people(sessionmaker)
    c = await new_complaint(sessionmaker, keyring, "m1")
    await act(sessionmaker, c.number, "assign", who["amy"], T0)
    plan = await act(sessionmaker, c.number, "draft_plan", who["amy"], T0,
                     measures=[{"kind": "compensation", "amount": "1500"}], deadline="2026-11-30")
    assert plan.needs_manager and plan.estimated_cost_cents == 150_000
    await act(sessionmaker, c.number, "approve_plan", who["sue"], T0)
    async with sessionmaker() as s:
        assert (await plans.current_plan(s, c.id)).status == "awaiting_manager"
    with pytest.raises(TransitionRefused, match="approved before"):
        await act(sessionmaker, c.number, "resolve", who["amy"], T0, result="x")
    with pytest.raises(Forbidden, match="manager"):
        await act(sessionmaker, c.number, "approve_plan", who["sue"], T0)
    await act(sessionmaker, c.number, "approve_plan", who["max"], T0)
    async with sessionmaker() as s:
        p = await plans.current_plan(s, c.id)
        assert (p.status, p.supervisor_id, p.manager_id) == ("approved", who["sue"].agent_id, who["max"].agent_id)


async def test_refunds_and_returns_are_recorded_for_the_monthly_report(sessionmaker, keyring):
    who = await people(sessionmaker)
    await resolved(sessionmaker, keyring, who)
    async with sessionmaker() as s:
        report = await plans.monthly_remedies(s, 2026, 11)
        assert report == {"refund": {"count": 1, "amount_cents": 1250}}
        assert await plans.monthly_remedies(s, 2026, 12) == {}


async def test_dispute_escalates_and_reopens(sessionmaker, keyring):
    who = await people(sessionmaker)
    number = await resolved(sessionmaker, keyring, who)
    await new_complaint(sessionmaker, keyring, "m2", "2 还是没收到退款", refs=[number])
    await Scheduler(sessionmaker, ENV).run_once(T0 + timedelta(hours=4))
    c = await load(sessionmaker, number)
    assert c.status == "disputed" and c.resolved_at is None
    async with sessionmaker() as s:
        esc = await s.scalar(select(Escalation))
        assert (esc.kind, esc.level) == ("dispute", "supervisor") and "还是没收到退款" in esc.detail
        assert (await s.get(ComplaintWorkflow, c.id)).escalation == "supervisor"
    with pytest.raises(Forbidden):
        await act(sessionmaker, number, "reopen", who["amy"], T0)
    await act(sessionmaker, number, "reopen", who["sue"], T0 + timedelta(hours=5))
    await act(sessionmaker, number, "draft_plan", who["amy"], T0 + timedelta(hours=5), **PLAN)
    assert (await load(sessionmaker, number)).status == "in_progress"


async def test_merge_duplicates_and_withdraw(sessionmaker, keyring):
    who = await people(sessionmaker)
    a = await new_complaint(sessionmaker, keyring, "m1", "快递丢了")
    b = await new_complaint(sessionmaker, keyring, "m2", "包裹不见了", handle="zhao@example.com")
    await act(sessionmaker, b.number, "merge", who["amy"], T0, into=a.number)
    b2 = await load(sessionmaker, b.number)
    assert b2.status == "merged" and b2.closed_at is not None
    async with sessionmaker() as s:
        assert (await s.get(ComplaintWorkflow, b.id)).merged_into_id == a.id
        assert await s.scalar(select(AuditEvent.action).where(AuditEvent.complaint_id == a.id,
                                                              AuditEvent.action == "merged_in")) == "merged_in"
    with pytest.raises(TransitionRefused):
        await act(sessionmaker, b.number, "assign", who["amy"], T0)
    await act(sessionmaker, a.number, "assign", who["amy"], T0)
    await act(sessionmaker, a.number, "withdraw", who["amy"], T0, reason="客户已收到")
    assert (await load(sessionmaker, a.number)).status == "withdrawn"


async def test_phone_complaints_get_call_tasks_instead_of_messages(sessionmaker, keyring):
    who = await people(sessionmaker)
    c = await new_complaint(sessionmaker, keyring, "p1", "快递没到", channel="phone", handle="13812345678")
    await act(sessionmaker, c.number, "assign", who["amy"], T0)
    async with sessionmaker() as s:
        complaint = await s.get(Complaint, c.id)
        await reply(s, complaint, who["amy"], "已电话告知：明天送达", T0 + timedelta(hours=1))
        await s.commit()
    async with sessionmaker() as s:
        assert await s.scalar(select(func.count()).select_from(OutboxItem)) == 0
        note = await s.scalar(select(ComplaintMessage).where(ComplaintMessage.direction == "out"))
        assert (note.kind, note.text) == ("call_note", "已电话告知：明天送达")
        assert (await s.get(Complaint, c.id)).first_response_at == T0 + timedelta(hours=1)
    await act(sessionmaker, c.number, "draft_plan", who["amy"], T0, **PLAN)
    await act(sessionmaker, c.number, "approve_plan", who["sue"], T0)
    await act(sessionmaker, c.number, "resolve", who["amy"], T0, result="已送达")
    async with sessionmaker() as s:
        task = await s.scalar(select(WorkTask))
        assert task.kind == "call_customer" and "处理结果" in task.reason
        assert await s.scalar(select(AuditEvent.detail).where(AuditEvent.action == "call_needed"))


async def test_audit_events_cannot_be_edited(sessionmaker, keyring):
    await new_complaint(sessionmaker, keyring, "m1")
    async with sessionmaker() as s:
        event = await s.scalar(select(AuditEvent))
        event.actor = "someone else"
        with pytest.raises(audit.AuditImmutable):
            await s.flush()
        await s.rollback()
    async with sessionmaker() as s:
        event = await s.scalar(select(AuditEvent))
        await s.delete(event)
        with pytest.raises(audit.AuditImmutable):
            await s.flush()


async def test_survey_tokens_are_signed_and_expire():
    token = make_token(42, T0)
    assert read_token(token, T0) == 42
    from workflow.surveys import SurveyError
    forged = "43" + token[2:]
    for bad, when in ((forged, T0), (token, T0 + timedelta(days=15)), ("nonsense", T0)):
        with pytest.raises(SurveyError):
            read_token(bad, when)


async def test_survey_by_numbered_reply_on_chat(sessionmaker, keyring):
    who = await people(sessionmaker)
    number = await resolved(sessionmaker, keyring, who, channel="webchat", handle="sess-1")
    await act(sessionmaker, number, "confirm", CUSTOMER, T0 + timedelta(hours=4))
    sched = Scheduler(sessionmaker, ENV)
    await sched.run_once(T0 + timedelta(hours=4))
    async with sessionmaker() as s:
        survey = await s.scalar(select(OutboxItem).where(OutboxItem.kind == "survey"))
        assert survey.channel == "webchat" and "link" not in survey.payload and "1-5分" in survey.payload["text"]
    await new_complaint(sessionmaker, keyring, "w9", "5 3 4 送货员很好", channel="webchat", handle="sess-1",
                        refs=[number])
    await sched.run_once(T0 + timedelta(hours=5))
    async with sessionmaker() as s:
        r = await s.scalar(select(SurveyResponse))
        assert (r.efficiency, r.attitude, r.solution, r.comment, r.channel) == (5, 3, 4, "送货员很好", "webchat")
        assert await s.scalar(select(WorkTask.kind)) == "callback"


async def test_a_channel_can_apply_a_customer_answer_directly(sessionmaker, keyring):
    from workflow.replies import customer_answer
    who = await people(sessionmaker)
    number = await resolved(sessionmaker, keyring, who, channel="webchat", handle="sess-2")
    async with sessionmaker() as s:
        assert await customer_answer(s, number, "你好", channel="webchat", env=ENV, now=T0) is None
        assert await customer_answer(s, number, "2 冰箱还是漏水", channel="webchat", env=ENV, now=T0) == "dispute"
        await s.commit()
    assert (await load(sessionmaker, number)).status == "disputed"
