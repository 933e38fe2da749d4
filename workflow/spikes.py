"""Spike alerts (某个批次出现问题): a day with unusually many complaints about one category or product.

For a day D and each value of a dimension, the database counts complaints per Beijing day over
D and the 28 days before it and returns, per value, D's count with the sum and the sum of squares
of the 28 earlier daily counts (days without complaints count as zero). A value spikes when

    count(D) >= min_count   and   count(D) > mean + sigmas * max(std, sqrt(mean))

The sqrt(mean) floor is the Poisson spread of a count: a product with a steady 5 complaints a day
(std 0) does not alert at 6. An alert is one row per (day, dimension, value): checking the same day
again (the check runs several times a day, from several processes) updates the count and the
complaints involved, never raises a second alert or a second notice.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from models import Complaint, SpikeAlert, StaffNotice, utcnow

from . import audit
from .calendar import SHANGHAI
from .reports.labels import label
from .reports.period import day_start, local_day

DIMENSIONS = {"category": Complaint.category, "product": Complaint.product}
DIMENSION_LABELS = {"category": "投诉分类", "product": "产品"}
MAX_NUMBERS = 200     # complaint numbers kept on an alert


@dataclass(frozen=True)
class SpikeRule:
    window_days: int = 28
    sigmas: float = 3.0
    min_count: int = 5

    def threshold(self, mean: float, std: float) -> float:
        return mean + self.sigmas * max(std, math.sqrt(mean))


@dataclass(frozen=True)
class Spike:
    day: date
    dimension: str
    value: str
    count: int
    mean: float
    std: float
    threshold: float


async def find_spikes(session: AsyncSession, day: date, dimension: str, rule: SpikeRule = SpikeRule()) -> list[Spike]:
    """The values of `dimension` that spiked on `day` (Beijing time); one grouped query."""
    col = DIMENSIONS[dimension]
    dialect = session.bind.dialect.name
    d = local_day(Complaint.received_at, dialect)
    per_day = (select(col.label("v"), d.label("d"), func.count().label("n"))
               .where(Complaint.received_at >= day_start(day - timedelta(days=rule.window_days)),
                      Complaint.received_at < day_start(day + timedelta(days=1)), col.is_not(None))
               .group_by(col, d).subquery())
    today = day.isoformat()
    n_today = func.sum(case((per_day.c.d == today, per_day.c.n), else_=0))
    stmt = (select(per_day.c.v, n_today,
                   func.sum(case((per_day.c.d != today, per_day.c.n), else_=0)),
                   func.sum(case((per_day.c.d != today, per_day.c.n * per_day.c.n), else_=0)))
            .group_by(per_day.c.v).having(n_today >= rule.min_count))
    out = []
    for value, count, total, squares in (await session.execute(stmt)).all():
        count, total, squares = int(count), int(total or 0), int(squares or 0)
        mean = total / rule.window_days
        std = math.sqrt(max(0.0, squares / rule.window_days - mean * mean))
        threshold = rule.threshold(mean, std)
        if count > threshold:
            out.append(Spike(day, dimension, value, count, round(mean, 3), round(std, 3), round(threshold, 3)))
    return out


async def _numbers(session: AsyncSession, spike: Spike) -> list[str]:
    col = DIMENSIONS[spike.dimension]
    return list((await session.scalars(
        select(Complaint.number).where(col == spike.value, Complaint.received_at >= day_start(spike.day),
                                       Complaint.received_at < day_start(spike.day + timedelta(days=1)))
        .order_by(Complaint.received_at, Complaint.id).limit(MAX_NUMBERS))).all())


async def record_spike(session: AsyncSession, spike: Spike, now: datetime) -> SpikeAlert | None:
    """Store the alert and notify supervisors; an alert already stored for the same day, dimension
    and value is updated instead and None is returned."""
    numbers = await _numbers(session, spike)
    key = dict(day=spike.day.isoformat(), dimension=spike.dimension, value=spike.value)
    existing = await session.scalar(select(SpikeAlert).filter_by(**key))
    if existing is not None:
        if spike.count > existing.count:
            existing.count, existing.complaint_numbers, existing.updated_at = spike.count, numbers, now
        return None
    alert = SpikeAlert(**key, count=spike.count, baseline_mean=spike.mean, baseline_std=spike.std,
                       threshold=spike.threshold, complaint_numbers=numbers, created_at=now, updated_at=now)
    try:
        async with session.begin_nested():      # another process may have stored it a moment ago
            session.add(alert)
            await session.flush()
    except IntegrityError:
        return None
    name = label(spike.dimension, spike.value)
    title = f"投诉异常上升：{DIMENSION_LABELS[spike.dimension]}“{name}”"
    body = (f"{spike.day.isoformat()} 收到{DIMENSION_LABELS[spike.dimension]}“{name}”的投诉 {spike.count} 件，"
            f"前 {SpikeRule.window_days} 天日均 {spike.mean:.1f} 件（预警线 {spike.threshold:.1f} 件），"
            f"请排查是否为同一批次问题。涉及投诉：{'、'.join(numbers[:20])}{' 等' if len(numbers) > 20 else ''}")
    session.add(StaffNotice(role="supervisor", department_code=None, kind="spike", title=title[:200], body=body,
                            link=f"/api/alerts/{alert.id}", dedupe_key=f"spike:{alert.id}", created_at=now))
    audit.record(session, "system", "spike_alert", at=now,
                 after={"alert": alert.id, **key, "count": spike.count, "threshold": spike.threshold})
    return alert


async def check_day(session: AsyncSession, day: date, *, rule: SpikeRule = SpikeRule(),
                    now: datetime | None = None) -> list[SpikeAlert]:
    """Find and store the spikes of one day in every dimension; returns the new alerts."""
    now = now or utcnow()
    new = []
    for dimension in DIMENSIONS:
        for spike in await find_spikes(session, day, dimension, rule):
            alert = await record_spike(session, spike, now)
            if alert is not None:
                new.append(alert)
    await session.flush()
    return new


async def run_spike_check(session: AsyncSession, now: datetime, *, rule: SpikeRule = SpikeRule()) -> list[SpikeAlert]:
    """The scheduled job: yesterday (complete) and today so far (an early warning: a count only
    grows during the day). Idempotent; the caller commits."""
    today = now.astimezone(SHANGHAI).date()
    return [*await check_day(session, today - timedelta(days=1), rule=rule, now=now),
            *await check_day(session, today, rule=rule, now=now)]


def alert_dict(alert: SpikeAlert) -> dict[str, Any]:
    return {"id": alert.id, "day": alert.day, "dimension": alert.dimension, "value": alert.value,
            "label": label(alert.dimension, alert.value), "count": alert.count,
            "baseline_mean": alert.baseline_mean, "baseline_std": alert.baseline_std, "threshold": alert.threshold,
            "complaints": alert.complaint_numbers, "created_at": alert.created_at.isoformat(),
            "updated_at": alert.updated_at.isoformat(),
            "acknowledged_at": alert.acknowledged_at.isoformat() if alert.acknowledged_at else None,
            "acknowledged_by": alert.acknowledged_by}


async def list_alerts(session: AsyncSession, *, since: date | None = None, limit: int = 100) -> list[SpikeAlert]:
    stmt = select(SpikeAlert).order_by(SpikeAlert.day.desc(), SpikeAlert.id.desc()).limit(limit)
    if since is not None:
        stmt = stmt.where(SpikeAlert.day >= since.isoformat())
    return list((await session.scalars(stmt)).all())
