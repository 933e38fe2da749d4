"""Reports, spike alerts and staff notices in the agents' API.

    GET  /api/reports                        kept monthly reports (manager and above)
    GET  /api/reports/{month}?format=json|xlsx|html[&fresh=1][&download=1]
                                             a month's report: the kept one, else computed now
    POST /api/reports/{month}                compute and keep it again (manager and above)
    GET  /api/alerts[?since=YYYY-MM-DD]      spike alerts (supervisor and above)
    GET  /api/alerts/{id}                    one alert with its complaint numbers
    POST /api/alerts/{id}/ack                acknowledge an alert (supervisor and above)
    GET  /api/notices                        notices for the caller's role and department
"""
from __future__ import annotations

from datetime import date
from urllib.parse import quote

from aiohttp import web
from sqlalchemy import or_, select

from models import MonthlyReport, SpikeAlert, StaffNotice, utcnow
from workflow import audit
from workflow.reports import FORMATS, Month, keep_report, render_async, report_figures
from workflow.spikes import alert_dict, list_alerts

from .auth import RANK, require_role
from .errors import ApiError, json_response
from .keys import AGENT, SESSIONMAKER

routes = web.RouteTableDef()


def _month(request: web.Request) -> Month:
    try:
        month = Month.parse(request.match_info["month"])
    except ValueError as exc:
        raise ApiError(400, str(exc), field="month") from None
    if month > Month.containing(utcnow()):
        raise ApiError(400, f"{month} has not begun yet", field="month")
    return month


@routes.get("/api/reports")
async def list_reports(request: web.Request) -> web.Response:
    require_role(request, "manager")
    async with request.app[SESSIONMAKER]() as session:
        rows = (await session.execute(
            select(MonthlyReport.month, MonthlyReport.generated_at, MonthlyReport.generated_by, MonthlyReport.as_of)
            .order_by(MonthlyReport.month.desc()).limit(120))).all()
        await session.commit()
    return json_response({"reports": [
        {"month": m, "generated_at": g.isoformat(), "generated_by": by, "as_of": a.isoformat(),
         "downloads": {fmt: f"/api/reports/{m}?format={fmt}" for fmt in FORMATS}} for m, g, by, a in rows]})


@routes.get("/api/reports/{month}")
async def get_report(request: web.Request) -> web.Response:
    require_role(request, "manager")
    month = _month(request)
    fmt = request.query.get("format", "json")
    if fmt not in FORMATS:
        raise ApiError(400, f"format must be one of {', '.join(FORMATS)}", field="format")
    fresh = request.query.get("fresh") in ("1", "true")
    async with request.app[SESSIONMAKER]() as session:
        figures = await report_figures(session, month, fresh=fresh)
        await session.commit()
    rendered = await render_async(figures, fmt)
    disposition = "attachment" if fmt == "xlsx" or request.query.get("download") in ("1", "true") else "inline"
    return web.Response(body=rendered.body, headers={
        "Content-Type": rendered.content_type, "Cache-Control": "no-store",
        "Content-Disposition": f"{disposition}; filename=\"{rendered.filename}\"; "
                               f"filename*=UTF-8''{quote(rendered.filename)}"})


@routes.post("/api/reports/{month}")
async def regenerate_report(request: web.Request) -> web.Response:
    require_role(request, "manager")
    month = _month(request)
    async with request.app[SESSIONMAKER]() as session:
        row = await keep_report(session, month, actor=f"agent:{request[AGENT].id}")
        await session.commit()
    return json_response({"month": row.month, "generated_at": row.generated_at.isoformat(),
                          "total": row.figures["volume"]["total"]}, 201)


@routes.get("/api/alerts")
async def get_alerts(request: web.Request) -> web.Response:
    require_role(request, "supervisor")
    since = None
    if request.query.get("since"):
        try:
            since = date.fromisoformat(request.query["since"])
        except ValueError:
            raise ApiError(400, "since must be a date (YYYY-MM-DD)", field="since") from None
    async with request.app[SESSIONMAKER]() as session:
        alerts = await list_alerts(session, since=since)
        await session.commit()
    return json_response({"alerts": [alert_dict(a) for a in alerts]})


async def _alert(session, request: web.Request) -> SpikeAlert:
    try:
        alert_id = int(request.match_info["id"])
    except ValueError:
        raise ApiError(404, "no such alert") from None
    alert = await session.get(SpikeAlert, alert_id)
    if alert is None:
        raise ApiError(404, "no such alert")
    return alert


@routes.get("/api/alerts/{id}")
async def get_alert(request: web.Request) -> web.Response:
    require_role(request, "supervisor")
    async with request.app[SESSIONMAKER]() as session:
        alert = await _alert(session, request)
        await session.commit()
    return json_response(alert_dict(alert))


@routes.post("/api/alerts/{id}/ack")
async def acknowledge_alert(request: web.Request) -> web.Response:
    require_role(request, "supervisor")
    agent = request[AGENT]
    async with request.app[SESSIONMAKER]() as session:
        alert = await _alert(session, request)
        if alert.acknowledged_at is None:
            alert.acknowledged_at, alert.acknowledged_by = utcnow(), agent.id
            audit.record(session, f"agent:{agent.id}", "spike_alert_acknowledged", after={"alert": alert.id})
        await session.commit()
    return json_response(alert_dict(alert))


@routes.get("/api/notices")
async def get_notices(request: web.Request) -> web.Response:
    agent = request[AGENT]
    roles = [r for r, rank in RANK.items() if rank <= RANK[agent.role]]
    stmt = select(StaffNotice).where(StaffNotice.role.in_(roles)).order_by(StaffNotice.id.desc()).limit(100)
    if agent.role in ("agent", "supervisor"):
        stmt = stmt.where(or_(StaffNotice.department_code.is_(None),
                              StaffNotice.department_code == (agent.department_code or "")))
    async with request.app[SESSIONMAKER]() as session:
        notices = (await session.scalars(stmt)).all()
        await session.commit()
    return json_response({"notices": [
        {"id": n.id, "kind": n.kind, "role": n.role, "title": n.title, "body": n.body, "link": n.link,
         "created_at": n.created_at.isoformat()} for n in notices]})
