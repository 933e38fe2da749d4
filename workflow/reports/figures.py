"""The monthly report's figures, every one aggregated by the database.

Each figure is one grouped query over the month's complaints, found through the index on
`complaints.received_at`; the joined rows (workflow figures, survey answers, departments) are
reached by primary key or indexed foreign key, and remedies through `remedies.recorded_at`.
Python only shapes the few result rows into a JSON-ready dict: no loop over complaints.

Which complaints count:
- the month's complaints are those *received* in the month (Beijing time); volume, distributions,
  on-time rates, handling time, satisfaction, repeats, disputes and reopens describe them, as
  known at `as_of` (normally the moment the report is made);
- a response (resolution) counts as due when it was given, or when its deadline passed before
  `as_of` without one: an overdue open complaint counts as late, not as missing;
- refunds and returns are those *recorded* in the month (the 客户投诉退货月统计表);
- the longest-open complaints are those received before the month's end and still open.
No personal data is read: no names, contacts, complaint texts or comments, only codes, numbers and
timestamps.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import and_, case, exists, func, or_, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from models import AuditEvent, Complaint, ComplaintWorkflow, Department, Remedy, SurveyResponse, utcnow

from ..lifecycle import OPEN
from . import labels
from .period import Month, local_day

DIMENSIONS = ("efficiency", "attitude", "solution")
LOW_SCORE = 3            # a score at or below this is unsatisfied (the call-back threshold)
LONG_LISTS = 30          # region and product distributions: this many rows, then one "其他" row
TOP = 10
NOT_HANDLED = ("merged", "withdrawn")   # closed without being handled: no resolution is due


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _one(value: Any) -> int:
    return int(value or 0)


def _tiebreak(col, dialect: str):
    """Ties in a ranking are ordered the same on both engines: by code point, empty values last."""
    return (col.collate("C") if dialect == "postgresql" else col).asc().nulls_last()


def _in_month(month: Month):
    return and_(Complaint.received_at >= month.start, Complaint.received_at < month.end)


async def monthly_figures(session: AsyncSession, month: Month, *, as_of: datetime | None = None) -> dict[str, Any]:
    """All figures of `month`'s report as a JSON-serialisable dict."""
    as_of = as_of or utcnow()
    dialect = session.bind.dialect.name
    if dialect == "postgresql":
        # These are short grouped queries over one month: PostgreSQL's JIT compiler, triggered by the
        # big tables' cost estimates, spends more time compiling them (~0.3 s each) than running them.
        await session.execute(text("SET LOCAL jit = off"))
    total = await _count(session, month)
    previous = await _count(session, month.previous())
    figures: dict[str, Any] = {
        "month": str(month), "timezone": "Asia/Shanghai", "as_of": as_of.isoformat(),
        "volume": {"total": total, "previous_total": previous, "change": total - previous,
                   "change_rate": _rate(total - previous, previous)},
        "per_day": await _per_day(session, month, dialect),
        "distribution": {dim: await _distribution(session, month, dim, total) for dim in labels.DIMENSIONS_OF_DISTRIBUTION},
        "on_time": await _on_time(session, month, as_of),
        "handling": await _handling(session, month),
        "satisfaction": await _satisfaction(session, month),
        "rates": await _rates(session, month, total),
        "remedies": await _remedies(session, month),
        "top_products": await _top_products(session, month, total),
        "longest_open": await _longest_open(session, month, as_of),
    }
    return figures


async def _count(session: AsyncSession, month: Month) -> int:
    return _one(await session.scalar(select(func.count()).select_from(Complaint).where(_in_month(month))))


async def _per_day(session: AsyncSession, month: Month, dialect: str) -> list[dict[str, Any]]:
    day = local_day(Complaint.received_at, dialect).label("day")
    rows = (await session.execute(select(day, func.count()).where(_in_month(month)).group_by(day))).all()
    counts = {r[0]: int(r[1]) for r in rows}
    return [{"day": d.isoformat(), "count": counts.get(d.isoformat(), 0)} for d in month.days()]


def _dimension_column(dim: str):
    return {"category": Complaint.category, "urgency": Complaint.urgency, "channel": Complaint.channel,
            "region": Complaint.region, "product": Complaint.product,
            "department": Complaint.department_code}[dim]


async def _distribution(session: AsyncSession, month: Month, dim: str, total: int) -> list[dict[str, Any]]:
    col = _dimension_column(dim)
    n = func.count().label("n")
    stmt = (select(col, n).where(_in_month(month)).group_by(col)
            .order_by(n.desc(), _tiebreak(col, session.bind.dialect.name)))
    if dim in ("region", "product"):
        stmt = stmt.limit(LONG_LISTS)
    rows = (await session.execute(stmt)).all()
    names = await _department_names(session) if dim == "department" else {}
    out = [{"key": key, "label": names.get(key) or labels.label(dim, key), "count": int(count),
            "share": _rate(int(count), total)} for key, count in rows]
    rest = total - sum(r["count"] for r in out)
    if rest > 0:
        out.append({"key": None, "label": labels.OTHERS, "count": rest, "share": _rate(rest, total), "others": True})
    return out


async def _department_names(session: AsyncSession) -> dict[str, str]:
    return {code: f"{name}（{code}）" for code, name in (await session.execute(select(Department.code, Department.name))).all()}


def _sum(condition) -> Any:
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


async def _on_time(session: AsyncSession, month: Month, as_of: datetime) -> dict[str, Any]:
    """On-time first response and resolution, overall and per urgency (see the module docstring).
    On time is judged by the minutes and target minutes kept when it happened (an urgency changed
    later does not rewrite history); without a workflow row, by the complaint's own deadline."""
    wf = ComplaintWorkflow
    answered = Complaint.first_response_at.is_not(None)
    answered_on_time = and_(answered, case(
        (wf.response_minutes.is_not(None), wf.response_minutes <= wf.response_target_minutes),
        else_=Complaint.first_response_at <= Complaint.response_due))
    unanswered_late = and_(Complaint.first_response_at.is_(None), Complaint.response_due < as_of,
                           Complaint.status.not_in(NOT_HANDLED))
    resolved = Complaint.resolved_at.is_not(None)
    resolved_on_time = and_(resolved, case(
        (wf.resolve_minutes.is_not(None), wf.resolve_minutes <= wf.resolve_target_minutes),
        else_=Complaint.resolved_at <= Complaint.resolve_due))
    unresolved_late = and_(Complaint.resolved_at.is_(None), Complaint.resolve_due < as_of,
                           Complaint.status.in_(OPEN))
    stmt = (select(Complaint.urgency, _sum(answered), _sum(answered_on_time), _sum(unanswered_late),
                   _sum(resolved), _sum(resolved_on_time), _sum(unresolved_late))
            .select_from(Complaint).outerjoin(wf, wf.complaint_id == Complaint.id)
            .where(_in_month(month)).group_by(Complaint.urgency).order_by(Complaint.urgency))
    rows = (await session.execute(stmt)).all()

    def block(answered_, on_time, late_open) -> dict[str, Any]:
        due = answered_ + late_open
        return {"done": answered_, "on_time": on_time, "overdue_open": late_open, "due": due,
                "rate": _rate(on_time, due)}

    response: dict[str, Any] = {}
    resolution: dict[str, Any] = {}
    totals = [0] * 6
    for urgency, *values in rows:
        values = [_one(v) for v in values]
        totals = [a + b for a, b in zip(totals, values)]
        response[urgency] = block(*values[:3])
        resolution[urgency] = block(*values[3:])
    return {"response": {"overall": block(*totals[:3]), "per_urgency": response},
            "resolution": {"overall": block(*totals[3:]), "per_urgency": resolution}}


async def _handling(session: AsyncSession, month: Month) -> dict[str, Any]:
    """Handling time: received → resolved, in hours, over the month's resolved complaints."""
    wf = ComplaintWorkflow
    base = (select(wf.resolve_minutes).join(Complaint, Complaint.id == wf.complaint_id)
            .where(_in_month(month), Complaint.resolved_at.is_not(None), wf.resolve_minutes.is_not(None)))
    n, mean = (await session.execute(
        select(func.count(), func.avg(wf.resolve_minutes)).select_from(wf)
        .join(Complaint, Complaint.id == wf.complaint_id)
        .where(_in_month(month), Complaint.resolved_at.is_not(None), wf.resolve_minutes.is_not(None)))).one()
    n = _one(n)
    median = None
    if n:
        # The median by the database too: the middle one or two values of the sorted minutes.
        middle = (await session.scalars(base.order_by(wf.resolve_minutes).offset((n - 1) // 2)
                                        .limit(2 - n % 2))).all()
        median = sum(middle) / len(middle)
    return {"resolved": n, "mean_hours": round(float(mean) / 60, 2) if mean is not None else None,
            "median_hours": round(median / 60, 2) if median is not None else None}


async def _satisfaction(session: AsyncSession, month: Month) -> dict[str, Any]:
    s = SurveyResponse
    columns = [func.count()]
    for dim in DIMENSIONS:
        col = getattr(s, dim)
        columns += [func.count(col), func.avg(col), *[_sum(col == score) for score in range(1, 6)]]
    any_low = or_(*[getattr(s, d) <= LOW_SCORE for d in DIMENSIONS])
    columns.append(_sum(any_low))
    row = (await session.execute(select(*columns).select_from(s).join(Complaint, Complaint.id == s.complaint_id)
                                 .where(_in_month(month)))).one()
    responses = _one(row[0])
    out: dict[str, Any] = {"responses": responses, "low_score": LOW_SCORE, "dimensions": {}}
    i = 1
    for dim in DIMENSIONS:
        answered, mean, *dist = row[i:i + 7]
        i += 7
        answered = _one(answered)
        dist = [_one(v) for v in dist]
        low = sum(dist[:LOW_SCORE])
        out["dimensions"][dim] = {"label": labels.DIMENSION[dim], "answered": answered,
                                  "mean": round(float(mean), 2) if mean is not None else None,
                                  "distribution": {str(k + 1): dist[k] for k in range(5)},
                                  "low": low, "low_share": _rate(low, answered)}
    out["any_low"] = _one(row[i])
    out["any_low_share"] = _rate(out["any_low"], responses)
    return out


async def _rates(session: AsyncSession, month: Month, total: int) -> dict[str, Any]:
    """Repeat complaints, disputed results and reopened complaints among the month's complaints."""
    wf = ComplaintWorkflow
    reopened = exists().where(AuditEvent.complaint_id == Complaint.id, AuditEvent.action == "reopen")
    row = (await session.execute(
        select(_sum(Complaint.repeat_of_id.is_not(None)), _sum(wf.disputes > 0), _sum(reopened))
        .select_from(Complaint).outerjoin(wf, wf.complaint_id == Complaint.id).where(_in_month(month)))).one()
    repeat, disputed, reopen = (_one(v) for v in row)
    return {"repeat": {"count": repeat, "rate": _rate(repeat, total)},
            "dispute": {"count": disputed, "rate": _rate(disputed, total)},
            "reopen": {"count": reopen, "rate": _rate(reopen, total)}}


async def _remedies(session: AsyncSession, month: Month) -> dict[str, Any]:
    """Refunds, returns, replacements and compensations recorded in the month: per kind, and per
    product (the 客户投诉退货月统计表)."""
    r = Remedy
    in_month = and_(r.recorded_at >= month.start, r.recorded_at < month.end)
    kinds = list(labels.REMEDY)
    by_kind = {k: {"kind": k, "label": labels.REMEDY[k], "count": 0, "amount_cents": 0} for k in kinds}
    for kind, n, amount in (await session.execute(
            select(r.kind, func.count(), func.coalesce(func.sum(r.amount_cents), 0)).where(in_month)
            .group_by(r.kind))).all():
        by_kind.setdefault(kind, {"kind": kind, "label": labels.REMEDY.get(kind, kind), "count": 0, "amount_cents": 0})
        by_kind[kind].update(count=int(n), amount_cents=int(amount))
    columns = []
    for k in kinds:
        columns += [_sum(r.kind == k), func.coalesce(func.sum(case((r.kind == k, r.amount_cents), else_=0)), 0)]
    stmt = (select(Complaint.product, func.count(func.distinct(r.complaint_id)), *columns)
            .select_from(r).join(Complaint, Complaint.id == r.complaint_id).where(in_month)
            .group_by(Complaint.product))
    per_product = []
    for product, complaints, *values in (await session.execute(stmt)).all():
        entry: dict[str, Any] = {"product": product or labels.UNKNOWN, "complaints": int(complaints)}
        for j, k in enumerate(kinds):
            entry[k] = {"count": _one(values[2 * j]), "amount_cents": _one(values[2 * j + 1])}
        per_product.append(entry)
    per_product.sort(key=lambda e: (-e["return"]["count"], -e["refund"]["amount_cents"], e["product"]))
    return {"by_kind": list(by_kind.values()), "per_product": per_product,
            "count": sum(v["count"] for v in by_kind.values()),
            "amount_cents": sum(v["amount_cents"] for v in by_kind.values())}


async def _top_products(session: AsyncSession, month: Month, total: int) -> list[dict[str, Any]]:
    n = func.count().label("n")
    rows = (await session.execute(select(Complaint.product, n).where(_in_month(month), Complaint.product.is_not(None))
                                  .group_by(Complaint.product)
                                  .order_by(n.desc(), _tiebreak(Complaint.product, session.bind.dialect.name))
                                  .limit(TOP))).all()
    if not rows:
        return []
    products = [p for p, _ in rows]
    prev = month.previous()
    before = dict((await session.execute(
        select(Complaint.product, func.count()).where(_in_month(prev), Complaint.product.in_(products))
        .group_by(Complaint.product))).all())
    return [{"rank": i + 1, "product": p, "count": int(c), "share": _rate(int(c), total),
             "previous": int(before.get(p, 0))} for i, (p, c) in enumerate(rows)]


async def _longest_open(session: AsyncSession, month: Month, as_of: datetime) -> list[dict[str, Any]]:
    rows = (await session.execute(
        select(Complaint.number, Complaint.category, Complaint.urgency, Complaint.department_code, Complaint.status,
               Complaint.received_at)
        .where(Complaint.status.in_(OPEN), Complaint.received_at < month.end)
        .order_by(Complaint.received_at, Complaint.id).limit(TOP))).all()
    return [{"number": number, "category": labels.label("category", category), "urgency": urgency,
             "department": department, "status": labels.STATUS.get(status, status),
             "received_at": received.isoformat(),
             "days_open": round(max(0.0, (as_of - received).total_seconds()) / 86400, 1)}
            for number, category, urgency, department, status, received in rows]
