"""Every figure of the monthly report against values computed by hand on a small fixed data set,
on SQLite and PostgreSQL. `seed_fixed_month` is reused by the rendering and end-to-end tests.

The data set (Beijing time; the report month is 2026-10, figures as of 2026-11-01 08:00):

  no  received          cat              urg ch       region product  dept status       resp(min/target) resolve(min/target)
  K1  10-01 00:10       product_quality  P0  email    北京   水壶A    QA   closed        30/120    600/1440
  K2  10-01 23:30       product_quality  P0  wechat   北京   水壶A    QA   closed        150/120   1500/1440  repeat of S1
  K3  10-05 09:00       logistics        P1  phone    上海   水壶A    LG   disputed      60/240    (disputed, due 10-07)
  K4  10-10 14:00       logistics        P2  email    上海   保温杯B  LG   closed        500/480   2880/12960
  K5  10-10 15:00       service          P2  webchat  —      —        CS   in_progress   100/480   (due 10-19), disputed once, reopened
  K6  10-20 08:00       price_refund     P1  email    广州   保温杯B  FN   registered    (due 10-20 12:00) (due 10-22)
  K7  10-31 23:30       product_quality  P2  email    北京   水壶A    QA   registered    (due 11-01 07:30) (due 11-10)
  K8  10-15 10:00       other            P2  walk_in  广州   —        CS   withdrawn     —
  S1..S3 in September (S3 at 09-30 23:30, i.e. 15:30 UTC on the 30th), N1 at 11-01 00:30 (16:30 UTC on 10-31).
  Surveys: K1 (5,5,4), K2 (2,3,2), K4 (4,4,-), S1 (1,1,1: not October's).
  Remedies recorded in October: K1 return 199.00 + refund 199.00, K2 refund 50.00, S2 replacement 0,
  K4 compensation 20.00; K4 refund 10.00 on 11-01 00:30 and S1 refund on 09-30 are outside.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from models import AuditEvent, Complaint, ComplaintWorkflow, Customer, Remedy, SurveyResponse
from workflow.reports import Month, monthly_figures

BJ = ZoneInfo("Asia/Shanghai")
AS_OF = datetime(2026, 11, 1, 8, 0, tzinfo=BJ)
OCTOBER = Month(2026, 10)
SECRET_NAME = "张三丰"
SECRET_PHONE = "13912345678"
SECRET_TEXT = "我的水壶漏电了，地址是幸福路88号"


def bj(month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=BJ)


RESPONSE = {"P0": timedelta(hours=2), "P1": timedelta(hours=4), "P2": timedelta(hours=8)}
RESOLVE = {"P0": timedelta(hours=24), "P1": timedelta(hours=48), "P2": timedelta(days=9)}


async def seed_fixed_month(session) -> dict[str, Complaint]:
    """Insert the data set above; returns the complaints by their short name."""
    customer = Customer(name=SECRET_NAME, phone=SECRET_PHONE, email="zhang@example.com", region="北京")
    session.add(customer)
    await session.flush()
    made: dict[str, Complaint] = {}

    def complaint(key, received, category, urgency, channel, region, product, dept, status, *, resp=None,
                  resolve=None, repeat_of=None, disputes=0, wf=True) -> Complaint:
        c = Complaint(number=f"T-{key}", channel=channel, status=status, category=category, urgency=urgency,
                      department_code=dept, text=SECRET_TEXT, subject="漏电", product=product, region=region,
                      customer_id=customer.id, received_at=received, registered_at=received,
                      response_due=received + RESPONSE[urgency], resolve_due=received + RESOLVE[urgency],
                      first_response_at=received + timedelta(minutes=resp) if resp is not None else None,
                      resolved_at=received + timedelta(minutes=resolve) if resolve is not None else None,
                      closed_at=received + timedelta(days=12) if status in ("closed", "withdrawn") else None,
                      repeat_of_id=made[repeat_of].id if repeat_of else None, suggestion={}, trace=[],
                      order_no="ORD-1", reply_to={"email": "zhang@example.com"})
        c._wf = dict(resp=resp, resolve=resolve, disputes=disputes) if wf else None
        made[key] = c
        return c

    complaint("S1", bj(9, 10, 10), "product_quality", "P1", "email", "北京", "水壶A", "QA", "closed", resp=10, resolve=100)
    complaint("S2", bj(9, 20, 10), "logistics", "P2", "phone", "上海", "水壶A", "LG", "closed", resp=10, resolve=100)
    complaint("S3", bj(9, 30, 23, 30), "service", "P2", "webchat", None, None, "CS", "closed", resp=10, resolve=100)
    session.add_all(list(made.values()))
    await session.flush()
    complaint("K1", bj(10, 1, 0, 10), "product_quality", "P0", "email", "北京", "水壶A", "QA", "closed", resp=30, resolve=600)
    complaint("K2", bj(10, 1, 23, 30), "product_quality", "P0", "wechat", "北京", "水壶A", "QA", "closed", resp=150,
              resolve=1500, repeat_of="S1")
    complaint("K3", bj(10, 5, 9), "logistics", "P1", "phone", "上海", "水壶A", "LG", "disputed", resp=60, disputes=1)
    complaint("K4", bj(10, 10, 14), "logistics", "P2", "email", "上海", "保温杯B", "LG", "closed", resp=500, resolve=2880)
    complaint("K5", bj(10, 10, 15), "service", "P2", "webchat", None, None, "CS", "in_progress", resp=100, disputes=1)
    complaint("K6", bj(10, 20, 8), "price_refund", "P1", "email", "广州", "保温杯B", "FN", "registered", wf=False)
    complaint("K7", bj(10, 31, 23, 30), "product_quality", "P2", "email", "北京", "水壶A", "QA", "registered")
    made["K7"].resolve_due = bj(11, 10, 0)
    complaint("K8", bj(10, 15, 10), "other", "P2", "walk_in", "广州", None, "CS", "withdrawn")
    complaint("N1", bj(11, 1, 0, 30), "product_quality", "P0", "email", "北京", "水壶A", "QA", "registered")
    session.add_all([made[k] for k in ("K1", "K2", "K3", "K4", "K5", "K6", "K7", "K8", "N1")])
    await session.flush()

    for c in made.values():
        if c._wf is None:
            continue
        spec = c._wf
        session.add(ComplaintWorkflow(
            complaint_id=c.id, disputes=spec["disputes"], resolutions=1 if spec["resolve"] else 0, progress_sent=0,
            sla_revision=0,
            response_minutes=spec["resp"], response_target_minutes=(int(RESPONSE[c.urgency].total_seconds() // 60)
                                                                     if spec["resp"] is not None else None),
            resolve_minutes=spec["resolve"], resolve_target_minutes=(int(RESOLVE[c.urgency].total_seconds() // 60)
                                                                     if spec["resolve"] is not None else None)))
    for key, scores in (("K1", (5, 5, 4)), ("K2", (2, 3, 2)), ("K4", (4, 4, None)), ("S1", (1, 1, 1))):
        e, a, s = scores
        session.add(SurveyResponse(complaint_id=made[key].id, channel="email", efficiency=e, attitude=a, solution=s,
                                   comment=f"{SECRET_NAME}的评价", created_at=made[key].received_at + timedelta(days=3)))
    for key, kind, cents, at in (("K1", "return", 19900, bj(10, 2, 12)), ("K1", "refund", 19900, bj(10, 2, 12)),
                                 ("K2", "refund", 5000, bj(10, 3, 9)), ("S2", "replacement", 0, bj(10, 8, 9)),
                                 ("K4", "compensation", 2000, bj(10, 12, 9)), ("K4", "refund", 1000, bj(11, 1, 0, 30)),
                                 ("S1", "refund", 700, bj(9, 30, 9))):
        c = made[key]
        session.add(Remedy(complaint_id=c.id, kind=kind, amount_cents=cents, department_code=c.department_code,
                           category=c.category, recorded_at=at))
    for key in ("K5", "S3"):
        session.add(AuditEvent(actor="agent:1", action="reopen", complaint_id=made[key].id, at=bj(10, 25, 9),
                               before={"status": "disputed"}, after={"status": "reopened"}))
    await session.flush()
    return made


@pytest.fixture
async def october(sessionmaker) -> dict:
    async with sessionmaker() as session:
        await seed_fixed_month(session)
        await session.commit()
    async with sessionmaker() as session:
        return await monthly_figures(session, OCTOBER, as_of=AS_OF)


def _dist(figures, dim):
    return [(r["label"], r["count"], r["share"]) for r in figures["distribution"][dim]]


async def test_volume_and_change_against_the_previous_month(october):
    assert october["volume"] == {"total": 8, "previous_total": 3, "change": 5, "change_rate": 1.6667}
    assert october["month"] == "2026-10"


async def test_volume_per_beijing_day_including_days_without_complaints(october):
    per_day = {d["day"]: d["count"] for d in october["per_day"]}
    assert len(per_day) == 31
    assert {d: n for d, n in per_day.items() if n} == {
        "2026-10-01": 2, "2026-10-05": 1, "2026-10-10": 2, "2026-10-15": 1, "2026-10-20": 1, "2026-10-31": 1}


async def test_distributions(october):
    assert _dist(october, "category") == [("产品质量", 3, 0.375), ("物流配送", 2, 0.25), ("其他投诉", 1, 0.125),
                                          ("价格退款", 1, 0.125), ("服务态度", 1, 0.125)]
    assert _dist(october, "urgency") == [("P2 一般", 4, 0.5), ("P0 紧急", 2, 0.25), ("P1 重要", 2, 0.25)]
    assert _dist(october, "channel") == [("电子邮件", 4, 0.5), ("电话", 1, 0.125), ("现场", 1, 0.125),
                                         ("在线客服", 1, 0.125), ("微信", 1, 0.125)]
    assert sorted(_dist(october, "region")) == sorted([("北京", 3, 0.375), ("上海", 2, 0.25), ("广州", 2, 0.25),
                                                       ("未填写", 1, 0.125)])
    assert sorted(_dist(october, "product")) == sorted([("水壶A", 4, 0.5), ("保温杯B", 2, 0.25), ("未填写", 2, 0.25)])
    assert _dist(october, "department") == [("质量部（QA）", 3, 0.375), ("客服部（CS）", 2, 0.25),
                                            ("物流部（LG）", 2, 0.25), ("财务部（FN）", 1, 0.125)]


async def test_on_time_first_response_overall_and_per_urgency(october):
    r = october["on_time"]["response"]
    assert r["per_urgency"]["P0"] == {"done": 2, "on_time": 1, "overdue_open": 0, "due": 2, "rate": 0.5}
    assert r["per_urgency"]["P1"] == {"done": 1, "on_time": 1, "overdue_open": 1, "due": 2, "rate": 0.5}
    assert r["per_urgency"]["P2"] == {"done": 2, "on_time": 1, "overdue_open": 1, "due": 3, "rate": 0.3333}
    assert r["overall"] == {"done": 5, "on_time": 3, "overdue_open": 2, "due": 7, "rate": 0.4286}


async def test_on_time_resolution_overall_and_per_urgency(october):
    r = october["on_time"]["resolution"]
    assert r["per_urgency"]["P0"] == {"done": 2, "on_time": 1, "overdue_open": 0, "due": 2, "rate": 0.5}
    assert r["per_urgency"]["P1"] == {"done": 0, "on_time": 0, "overdue_open": 2, "due": 2, "rate": 0.0}
    assert r["per_urgency"]["P2"] == {"done": 1, "on_time": 1, "overdue_open": 1, "due": 2, "rate": 0.5}
    assert r["overall"] == {"done": 3, "on_time": 2, "overdue_open": 3, "due": 6, "rate": 0.3333}


async def test_handling_time_mean_and_median(october):
    # resolved in 600, 1500 and 2880 minutes: mean 1660 min = 27.67 h, median 1500 min = 25 h
    assert october["handling"] == {"resolved": 3, "mean_hours": 27.67, "median_hours": 25.0}


async def test_satisfaction_means_distribution_and_low_share(october):
    s = october["satisfaction"]
    assert s["responses"] == 3 and s["low_score"] == 3
    eff, att, sol = (s["dimensions"][d] for d in ("efficiency", "attitude", "solution"))
    assert (eff["answered"], eff["mean"], eff["low"], eff["low_share"]) == (3, 3.67, 1, 0.3333)
    assert eff["distribution"] == {"1": 0, "2": 1, "3": 0, "4": 1, "5": 1}
    assert (att["answered"], att["mean"], att["low"], att["low_share"]) == (3, 4.0, 1, 0.3333)
    assert att["distribution"] == {"1": 0, "2": 0, "3": 1, "4": 1, "5": 1}
    assert (sol["answered"], sol["mean"], sol["low"], sol["low_share"]) == (2, 3.0, 1, 0.5)
    assert sol["distribution"] == {"1": 0, "2": 1, "3": 0, "4": 1, "5": 0}
    assert (s["any_low"], s["any_low_share"]) == (1, 0.3333)


async def test_repeat_dispute_and_reopen_rates(october):
    assert october["rates"] == {"repeat": {"count": 1, "rate": 0.125}, "dispute": {"count": 2, "rate": 0.25},
                                "reopen": {"count": 1, "rate": 0.125}}


async def test_returns_and_refunds_per_kind_and_per_product(october):
    rem = october["remedies"]
    assert [(k["kind"], k["count"], k["amount_cents"]) for k in rem["by_kind"]] == [
        ("refund", 2, 24900), ("return", 1, 19900), ("replacement", 1, 0), ("compensation", 1, 2000)]
    assert (rem["count"], rem["amount_cents"]) == (5, 46800)
    a, b = rem["per_product"]
    assert a == {"product": "水壶A", "complaints": 3, "refund": {"count": 2, "amount_cents": 24900},
                 "return": {"count": 1, "amount_cents": 19900}, "replacement": {"count": 1, "amount_cents": 0},
                 "compensation": {"count": 0, "amount_cents": 0}}
    assert b == {"product": "保温杯B", "complaints": 1, "refund": {"count": 0, "amount_cents": 0},
                 "return": {"count": 0, "amount_cents": 0}, "replacement": {"count": 0, "amount_cents": 0},
                 "compensation": {"count": 1, "amount_cents": 2000}}


async def test_top_products_with_the_previous_month(october):
    assert october["top_products"] == [
        {"rank": 1, "product": "水壶A", "count": 4, "share": 0.5, "previous": 2},
        {"rank": 2, "product": "保温杯B", "count": 2, "share": 0.25, "previous": 0}]


async def test_longest_open_complaints(october):
    rows = october["longest_open"]
    assert [r["number"] for r in rows] == ["T-K3", "T-K5", "T-K6", "T-K7"]
    assert rows[0] == {"number": "T-K3", "category": "物流配送", "urgency": "P1", "department": "LG",
                       "status": "客户有异议", "received_at": bj(10, 5, 9).astimezone(timezone.utc).isoformat(),
                       "days_open": 27.0}


async def test_no_personal_data_in_the_figures(october):
    import json
    text = json.dumps(october, ensure_ascii=False)
    for secret in (SECRET_NAME, SECRET_PHONE, SECRET_TEXT, "zhang@example.com", "ORD-1", "漏电"):
        assert secret not in text


async def test_an_empty_month_has_zeros_and_no_rates(sessionmaker):
    async with sessionmaker() as session:
        f = await monthly_figures(session, Month(2026, 2), as_of=AS_OF)
    assert f["volume"] == {"total": 0, "previous_total": 0, "change": 0, "change_rate": None}
    assert len(f["per_day"]) == 28 and all(d["count"] == 0 for d in f["per_day"])
    assert f["on_time"]["response"]["overall"]["rate"] is None
    assert f["handling"] == {"resolved": 0, "mean_hours": None, "median_hours": None}
    assert f["satisfaction"]["dimensions"]["efficiency"]["mean"] is None
    assert f["top_products"] == [] and f["longest_open"] == []
