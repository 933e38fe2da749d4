"""Satisfaction surveys: 1-5 on efficiency, attitude and solution, plus a comment.

Sent after the customer confirms the result: on e-mail as a link with a signed token (no login
needed), on chat and WeChat as numbered replies. Any score at or below the call-back threshold
opens a supervisor call-back task; otherwise the answer closes the complaint.
"""
from __future__ import annotations

import re
import unicodedata
from datetime import datetime, timedelta, timezone

from sqlalchemy.ext.asyncio import AsyncSession

from models import Complaint, SurveyResponse, utcnow
from models.crypto import keyring

from . import audit
from .config import current_env
from .lifecycle import CUSTOMER, SYSTEM, Actor, check, transition

DIMENSIONS = ("efficiency", "attitude", "solution")
DIMENSION_LABELS = {"efficiency": "处理效率", "attitude": "服务态度", "solution": "解决方案"}
TOKEN_DAYS = 14


class SurveyError(ValueError):
    pass


async def record_response(session: AsyncSession, complaint_id: int, *, channel: str, efficiency: int | None,
                          attitude: int | None, solution: int | None, comment: str | None = None,
                          actor: str = "customer", now: datetime | None = None, env=None) -> SurveyResponse:
    """Store an answer and follow it up in the same transaction: a confirmed complaint becomes
    surveyed; a score at or below the threshold opens a supervisor call-back, otherwise the
    complaint is closed. Channels that collect ratings themselves call this directly."""
    scores = {"efficiency": efficiency, "attitude": attitude, "solution": solution}
    for name, value in scores.items():
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 5):
            raise SurveyError(f"{name} must be a whole number from 1 to 5")
    if all(v is None for v in scores.values()):
        raise SurveyError("a survey answer needs at least one score")
    if comment is not None and len(comment) > 2000:
        raise SurveyError("the comment is longer than 2000 characters")
    now = now or utcnow()
    response = SurveyResponse(complaint_id=complaint_id, channel=channel, comment=comment, created_at=now, **scores)
    session.add(response)
    audit.record(session, actor, "survey_answered", complaint_id=complaint_id, after=scores, at=now)
    await session.flush()
    await _follow_up(session, complaint_id, response, CUSTOMER if actor == "customer" else SYSTEM,
                     env or current_env(), now)
    return response


async def _follow_up(session: AsyncSession, complaint_id: int, response: SurveyResponse, actor: Actor, env,
                     now: datetime) -> None:
    from .callbacks import open_callback
    from .records import lock_complaint, workflow_row
    complaint = await lock_complaint(session, complaint_id=complaint_id)
    if complaint is None:
        return
    scores = {d: getattr(response, d) for d in DIMENSIONS}
    low = any(v is not None and v <= env.settings.callback_score for v in scores.values())
    if complaint.status == "confirmed":
        transition(session, complaint, "record_survey", actor, now=now, after={"scores": scores})
        wf = await workflow_row(session, complaint)
        wf.surveyed_at = now
        if not low:
            transition(session, complaint, "close", SYSTEM, now=now,
                       detail="survey answered; no score needs a call-back")
    if low:
        await open_callback(session, complaint, response, env, now)


# -- the signed link ------------------------------------------------------------------------------

def make_token(complaint_id: int, now: datetime, days: int = TOKEN_DAYS) -> str:
    expires = int((now + timedelta(days=days)).timestamp())
    body = f"{complaint_id}.{expires}"
    return f"{body}.{keyring().sign('survey:' + body, 32)}"


def read_token(token: str, now: datetime | None = None) -> int:
    """The complaint id a survey token was made for; SurveyError if forged or expired."""
    parts = token.split(".")
    if len(parts) != 3 or not parts[0].isdigit() or not parts[1].isdigit() or len(parts[2]) != 32:
        raise SurveyError("this survey link is not valid")
    if not keyring().verify(f"survey:{parts[0]}.{parts[1]}", parts[2]):
        raise SurveyError("this survey link is not valid")
    if datetime.fromtimestamp(int(parts[1]), timezone.utc) < (now or utcnow()):
        raise SurveyError("this survey link has expired")
    return int(parts[0])


def survey_text(complaint: Complaint, link: str | None) -> str:
    head = f"您好，您的投诉（编号 {complaint.number}）已处理完毕，感谢您的确认。"
    if complaint.channel == "webchat":     # the chat offers 1-5 buttons
        return f"{head}\n请为本次处理打分（1-5分，5分最满意）。"
    if link:
        return (f"{head}\n请花一分钟为我们的处理打分（1-5分，5分最满意），无需登录：\n{link}\n"
                f"链接{TOKEN_DAYS}天内有效。")
    return (f"{head}\n请回复三个1-5的数字，依次为 处理效率、服务态度、解决方案 的评分（5分最满意），"
            "例如“5 4 5”；只回复一个数字表示三项同分；数字后可附留言。")


# -- numbered replies (chat, WeChat) --------------------------------------------------------------

_SCORES = re.compile(r"^\s*([1-5])(?:\s*[,，、/ ]\s*([1-5]))?(?:\s*[,，、/ ]\s*([1-5]))?(?![0-9])\s*(?:分|星)?\s*[。.,，:：]?\s*(.*)$",
                     re.S)


def parse_numbered_reply(text: str) -> tuple[dict[str, int], str | None] | None:
    """'5 4 3 很好' -> scores and comment; one number rates all three; None if not an answer."""
    text = unicodedata.normalize("NFKC", text or "").strip()
    m = _SCORES.match(text)
    if not m:
        return None
    numbers = [int(g) for g in m.groups()[:3] if g]
    if len(numbers) == 2:
        return None
    if len(numbers) == 1:
        numbers *= 3
    comment = m.group(4).strip() or None
    return dict(zip(DIMENSIONS, numbers)), comment


async def answer(session: AsyncSession, complaint: Complaint, env, *, channel: str, scores: dict[str, int | None],
                 comment: str | None, now: datetime, actor: Actor = CUSTOMER) -> SurveyResponse:
    """The survey answer of a confirmed complaint (from a link, a numbered reply or an agent)."""
    check(complaint, "record_survey", actor)
    return await record_response(session, complaint.id, channel=channel, comment=comment,
                                 actor=actor.label, now=now, env=env, **{d: scores.get(d) for d in DIMENSIONS})
