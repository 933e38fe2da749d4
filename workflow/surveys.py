"""Satisfaction surveys: 1-5 on efficiency, attitude and solution, plus a comment."""
from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from models import SurveyResponse, utcnow

from . import audit

DIMENSIONS = ("efficiency", "attitude", "solution")


class SurveyError(ValueError):
    pass


async def record_response(session: AsyncSession, complaint_id: int, *, channel: str, efficiency: int | None,
                          attitude: int | None, solution: int | None, comment: str | None = None,
                          actor: str = "customer") -> SurveyResponse:
    scores = {"efficiency": efficiency, "attitude": attitude, "solution": solution}
    for name, value in scores.items():
        if value is not None and (not isinstance(value, int) or not 1 <= value <= 5):
            raise SurveyError(f"{name} must be a whole number from 1 to 5")
    if all(v is None for v in scores.values()):
        raise SurveyError("a survey answer needs at least one score")
    response = SurveyResponse(complaint_id=complaint_id, channel=channel, comment=comment, created_at=utcnow(),
                              **scores)
    session.add(response)
    audit.record(session, actor, "survey_answered", complaint_id=complaint_id, after=scores)
    return response
