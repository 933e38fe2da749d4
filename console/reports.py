"""Reports, spike alerts and staff notices in the agents' API.

    GET  /api/reports                        kept monthly reports (manager and above)
    GET  /api/reports/{month}?format=json|xlsx|html[&fresh=1][&download=1]
                                             a month's report: the kept one, else computed now
    POST /api/reports/{month}                compute and keep it again (manager and above)
    GET  /api/alerts[?since=YYYY-MM-DD]      spike alerts (supervisor and above)
    GET  /api/alerts/{id}                    one alert with its complaint numbers
    POST /api/alerts/{id}/ack                acknowledge an alert (supervisor and above)
    GET  /api/notices                        notices for the caller's role and department

and the console page /console/reports (supervisors see the alerts, managers the reports too, with
download buttons that fetch the API above with the console session).
"""
from __future__ import annotations

from datetime import date, timedelta
from urllib.parse import quote, urlencode

from aiohttp import web
from sqlalchemy import or_, select

from models import MonthlyReport, SpikeAlert, StaffNotice, utcnow
from workflow.calendar import SHANGHAI
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


# ---------------------------------------------------------------- the console page

def _page_role(request: web.Request, role: str) -> None:
    if RANK[request[AGENT].role] < RANK[role]:
        raise web.HTTPForbidden(text=f"this page needs the {role} role or higher")


@routes.get("/console/reports")
async def reports_page(request: web.Request) -> web.Response:
    from .pages import back, render
    _page_role(request, "supervisor")
    can_report = RANK[request[AGENT].role] >= RANK["manager"]
    this_month = Month.containing(utcnow())
    month = this_month.previous()
    if request.query.get("month"):
        try:
            month = Month.parse(request.query["month"])
        except ValueError as exc:
            raise back("/console/reports", error=str(exc)) from None
        if month > this_month:
            raise back("/console/reports", error=f"{month} has not begun yet")
    async with request.app[SESSIONMAKER]() as session:
        reports, kept = [], None
        if can_report:
            reports = (await session.scalars(select(MonthlyReport).order_by(MonthlyReport.month.desc())
                                             .limit(36))).all()
            kept = next((r for r in reports if r.month == str(month)), None)
        since = utcnow().astimezone(SHANGHAI).date() - timedelta(days=30)
        alerts = [alert_dict(a) for a in await list_alerts(session, since=since)]
        await session.commit()
    return render(request, "reports.html", can_report=can_report, month=str(month), this_month=str(this_month),
                  kept=None if kept is None else {"generated_at": kept.generated_at.isoformat()},
                  reports=[{"month": r.month, "generated_at": r.generated_at.isoformat(),
                            "generated_by": r.generated_by} for r in reports], alerts=alerts)


@routes.post("/console/reports/{month}")
async def reports_keep_form(request: web.Request) -> web.Response:
    from .pages import back
    _page_role(request, "manager")
    try:
        month = _month(request)
    except ApiError as exc:
        raise back("/console/reports", error=exc.message) from None
    async with request.app[SESSIONMAKER]() as session:
        await keep_report(session, month, actor=f"agent:{request[AGENT].id}")
        await session.commit()
    raise web.HTTPSeeOther("/console/reports?" + urlencode({"month": str(month), "ok": f"{month} 报告已生成并存档"}))


@routes.post("/console/alerts/{id}/ack")
async def alert_ack_form(request: web.Request) -> web.Response:
    from .pages import back
    _page_role(request, "supervisor")
    agent = request[AGENT]
    async with request.app[SESSIONMAKER]() as session:
        try:
            alert = await _alert(session, request)
        except ApiError as exc:
            raise back("/console/reports", error=exc.message) from None
        if alert.acknowledged_at is None:
            alert.acknowledged_at, alert.acknowledged_by = utcnow(), agent.id
            audit.record(session, f"agent:{agent.id}", "spike_alert_acknowledged", after={"alert": alert.id})
        await session.commit()
    raise back("/console/reports", ok="预警已确认")
