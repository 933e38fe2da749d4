"""Spike alerts on a synthetic series with known spikes, on SQLite and PostgreSQL."""
from __future__ import annotations

import math
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, insert, select

from models import AuditEvent, Complaint, SpikeAlert, StaffNotice
from workflow.spikes import SpikeRule, check_day, find_spikes, run_spike_check

BJ = ZoneInfo("Asia/Shanghai")
D = date(2026, 10, 29)                       # the day checked
BASE = [1, 2, 3, 2] * 7                      # 28 daily counts: mean 2, population std sqrt(0.5)


def _rows(day: date, category: str, product: str | None, n: int, start: int, late: bool = False) -> list[dict]:
    out = []
    for i in range(n):
        # some at 23:30 Beijing time: still that Beijing day although the next UTC day has not begun yet
        at = datetime(day.year, day.month, day.day, 23 if late else 9, 30 if late else i % 60, tzinfo=BJ)
        out.append(dict(number=f"S-{start + i}", channel="email", status="registered", category=category,
                        urgency="P2", department_code="CS", text="x", product=product, received_at=at,
                        registered_at=at, response_due=at, resolve_due=at, suggestion={}, trace=[],
                        category_confidence=1.0, urgency_confidence=1.0, needs_review=False, reviewed=False))
    return out


async def seed_series(session) -> None:
    rows: list[dict] = []

    def add(day, category, product, n, late=False):
        rows.extend(_rows(day, category, product, n, len(rows), late))

    for i, n in enumerate(BASE):
        day = D - timedelta(days=28 - i)
        add(day, "logistics", "快递盒", n)
        add(day, "service", "稳定款", 5)                      # steady 5 a day: std 0
        if i % 7 == 0:
            add(day, "product_quality", "水壶X", 1)           # 4 in 28 days
    add(D - timedelta(days=29), "product_quality", "水壶X", 30)   # outside the window: must not count
    add(D, "logistics", "快递盒", 6)                           # above the mean but below mean + 3 sd
    add(D, "service", "稳定款", 7)                             # 5 -> 7: within the Poisson spread
    add(D, "product_quality", "水壶X", 9, late=True)           # the batch problem
    add(D, "product_quality", "保温杯Y", 4)                    # from nothing, but under the minimum count
    add(D + timedelta(days=1), "product_quality", "水壶X", 50)  # the next day: not D's
    await session.execute(insert(Complaint), rows)
    await session.flush()


@pytest.fixture
async def series(sessionmaker):
    async with sessionmaker() as session:
        await seed_series(session)
        await session.commit()
    return sessionmaker


def test_threshold_is_mean_plus_three_sd_with_a_poisson_floor():
    rule = SpikeRule()
    assert rule.threshold(2.0, math.sqrt(0.5)) == pytest.approx(2 + 3 * math.sqrt(2))
    assert rule.threshold(2.0, 3.0) == pytest.approx(11.0)
    assert rule.threshold(0.0, 0.0) == 0.0


async def test_the_known_spikes_are_found_and_nothing_else(series):
    async with series() as session:
        category = await find_spikes(session, D, "category")
        product = await find_spikes(session, D, "product")
    # product_quality on D: 9 水壶X + 4 保温杯Y = 13 against 4 in 28 days (mean 1/7)
    assert [(s.value, s.count) for s in category] == [("product_quality", 13)]
    assert category[0].mean == pytest.approx(0.143, abs=1e-3)
    assert [(s.value, s.count) for s in product] == [("水壶X", 9)]
    spike = product[0]
    mean = 4 / 28
    std = math.sqrt(4 / 28 - mean ** 2)
    assert (spike.mean, spike.std) == (round(mean, 3), round(std, 3))
    assert spike.threshold == round(mean + 3 * max(std, math.sqrt(mean)), 3)


async def test_a_lower_minimum_count_lets_a_small_new_product_alert(series):
    async with series() as session:
        product = await find_spikes(session, D, "product", SpikeRule(min_count=4))
    assert sorted(s.value for s in product) == ["保温杯Y", "水壶X"]


async def test_alerts_are_stored_with_their_complaints_and_supervisors_notified_once(series):
    now = datetime(2026, 10, 30, 0, 10, tzinfo=BJ)
    async with series() as session:
        first = await run_spike_check(session, now)
        await session.commit()
    async with series() as session:
        again = await run_spike_check(session, now + timedelta(hours=1))
        again_day = await check_day(session, D, now=now + timedelta(hours=2))
        await session.commit()
    assert {(a.day, a.dimension, a.value) for a in first} == {
        ("2026-10-29", "category", "product_quality"), ("2026-10-29", "product", "水壶X"),
        # today (the 30th) so far: 50 水壶X already, an early warning
        ("2026-10-30", "category", "product_quality"), ("2026-10-30", "product", "水壶X")}
    assert again == [] and again_day == []
    async with series() as session:
        alerts = (await session.scalars(select(SpikeAlert).order_by(SpikeAlert.id))).all()
        notices = (await session.scalars(select(StaffNotice).order_by(StaffNotice.id))).all()
        audits = await session.scalar(select(func.count()).select_from(AuditEvent)
                                      .where(AuditEvent.action == "spike_alert"))
    assert len(alerts) == 4 and len(notices) == 4 and audits == 4
    kettle = next(a for a in alerts if a.day == "2026-10-29" and a.value == "水壶X")
    assert kettle.count == 9 and len(kettle.complaint_numbers) == 9
    assert all(n.startswith("S-") for n in kettle.complaint_numbers)
    assert {n.role for n in notices} == {"supervisor"}
    note = next(n for n in notices if n.dedupe_key == f"spike:{kettle.id}")
    assert "水壶X" in note.title and "9 件" in note.body and kettle.complaint_numbers[0] in note.body


async def test_a_later_check_of_the_same_day_updates_the_count_without_a_new_alert(series):
    now = datetime(2026, 10, 29, 12, 0, tzinfo=BJ)
    async with series() as session:
        await check_day(session, D, now=now)
        await session.commit()
    async with series() as session:
        await session.execute(insert(Complaint), _rows(D, "product_quality", "水壶X", 3, 10_000))
        assert await check_day(session, D, now=now + timedelta(hours=6)) == []
        await session.commit()
    async with series() as session:
        kettle = await session.scalar(select(SpikeAlert).filter_by(day="2026-10-29", value="水壶X"))
        notices = await session.scalar(select(func.count()).select_from(StaffNotice))
    assert kettle.count == 12 and len(kettle.complaint_numbers) == 12
    assert notices == 2
