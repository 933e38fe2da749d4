"""The monthly report as an Excel workbook: a sheet per table, Chinese headers, native Excel charts
(openpyxl), so the numbers stay numbers a manager can sort, filter and chart further."""
from __future__ import annotations

import io
from datetime import datetime
from typing import Any, Iterable

from openpyxl import Workbook
from openpyxl.chart import BarChart, LineChart, Reference
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter

from ..calendar import SHANGHAI
from . import labels

HEADER_FILL = PatternFill("solid", fgColor="DCE6F1")
PERCENT = "0.0%"
MONEY = "#,##0.00"


def _local(iso: str) -> str:
    return datetime.fromisoformat(iso).astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M")


def _yuan(cents: int) -> float:
    return round(cents / 100, 2)


def _sheet(wb: Workbook, title: str, headers: list[str], rows: Iterable[Iterable[Any]], *,
           formats: dict[int, str] | None = None, first: bool = False):
    ws = wb.active if first else wb.create_sheet()
    ws.title = title
    ws.append(headers)
    for cell in ws[1]:
        cell.font = Font(bold=True)
        cell.fill = HEADER_FILL
        cell.alignment = Alignment(horizontal="center")
    n = 1
    for row in rows:
        ws.append(list(row))
        n += 1
    for col, fmt in (formats or {}).items():
        for r in range(2, n + 1):
            ws.cell(row=r, column=col).number_format = fmt
    for i, header in enumerate(headers, start=1):
        width = max([len(str(header)) * 2] + [len(str(ws.cell(row=r, column=i).value or "")) + 2
                                                for r in range(2, min(n, 60) + 1)])
        ws.column_dimensions[get_column_letter(i)].width = min(max(width, 10), 40)
    ws.freeze_panes = "A2"
    return ws, n


def _bar(title: str, y_title: str, ws, data_cols: tuple[int, int], rows: int, *, horizontal: bool = False,
         percent: bool = False) -> BarChart:
    chart = BarChart()
    chart.type = "bar" if horizontal else "col"
    chart.title = title
    chart.y_axis.title = y_title
    chart.height, chart.width = 8, 16
    data = Reference(ws, min_col=data_cols[0], max_col=data_cols[1], min_row=1, max_row=rows)
    cats = Reference(ws, min_col=1, min_row=2, max_row=rows)
    chart.add_data(data, titles_from_data=True)
    chart.set_categories(cats)
    if percent:
        chart.y_axis.numFmt = "0%"
        chart.y_axis.scaling.min, chart.y_axis.scaling.max = 0, 1
    return chart


def workbook(figures: dict[str, Any]) -> bytes:
    wb = Workbook()
    month = figures["month"]
    vol = figures["volume"]
    on_time = figures["on_time"]
    handling = figures["handling"]
    sat = figures["satisfaction"]
    rates = figures["rates"]
    rem = figures["remedies"]

    summary = [
        ("报告月份", month), ("统计截至（北京时间）", _local(figures["as_of"])), ("投诉总量（件）", vol["total"]),
        ("上月投诉量（件）", vol["previous_total"]), ("环比增减（件）", vol["change"]), ("环比变化", vol["change_rate"]),
        ("首次响应及时率", on_time["response"]["overall"]["rate"]),
        ("处理完结及时率", on_time["resolution"]["overall"]["rate"]),
        ("已解决投诉（件）", handling["resolved"]), ("平均处理时长（小时）", handling["mean_hours"]),
        ("处理时长中位数（小时）", handling["median_hours"]), ("满意度回访数", sat["responses"]),
        *[(f"{d['label']}平均分", d["mean"]) for d in sat["dimensions"].values()],
        (f"任一项评分≤{sat['low_score']}占比", sat["any_low_share"]),
        ("重复投诉率", rates["repeat"]["rate"]), ("异议率", rates["dispute"]["rate"]),
        ("重开率", rates["reopen"]["rate"]),
        ("退货/退款/换货/补偿笔数", rem["count"]), ("涉及金额（元）", _yuan(rem["amount_cents"])),
    ]
    ws, _ = _sheet(wb, "概览", ["指标", "数值"], summary, first=True)
    for r in range(2, len(summary) + 2):
        name = ws.cell(row=r, column=1).value
        if "率" in name or "占比" in name or name == "环比变化":
            ws.cell(row=r, column=2).number_format = PERCENT
        elif "金额" in name:
            ws.cell(row=r, column=2).number_format = MONEY
    ws.column_dimensions["B"].width = 28

    ws, n = _sheet(wb, "每日投诉量", ["日期", "投诉量"], ((d["day"], d["count"]) for d in figures["per_day"]))
    line = LineChart()
    line.title, line.y_axis.title, line.x_axis.title = f"{month} 每日投诉量", "件", "日期"
    line.height, line.width = 8, 20
    line.add_data(Reference(ws, min_col=2, min_row=1, max_row=n), titles_from_data=True)
    line.set_categories(Reference(ws, min_col=1, min_row=2, max_row=n))
    ws.add_chart(line, "D2")

    for dim, title in labels.DIMENSIONS_OF_DISTRIBUTION.items():
        rows = figures["distribution"][dim]
        ws, n = _sheet(wb, f"{title}分布", [title, "投诉量", "占比"],
                       ((r["label"], r["count"], r["share"]) for r in rows), formats={3: PERCENT})
        if dim == "category":
            ws.add_chart(_bar("投诉分类构成", "件", ws, (2, 2), n, horizontal=True), "E2")

    per_u = sorted(set(on_time["response"]["per_urgency"]) | set(on_time["resolution"]["per_urgency"]))

    def timely(kind: str, u: str | None) -> list[Any]:
        b = on_time[kind]["overall"] if u is None else on_time[kind]["per_urgency"].get(u, {})
        return [b.get("due", 0), b.get("on_time", 0), b.get("overdue_open", 0), b.get("rate")]

    rows = [[labels.URGENCY.get(u, u), *timely("response", u), *timely("resolution", u)] for u in per_u]
    rows.append(["合计", *timely("response", None), *timely("resolution", None)])
    ws, n = _sheet(wb, "及时率", ["紧急程度", "应响应数", "及时响应数", "超时未响应数", "首次响应及时率",
                               "应完结数", "及时完结数", "超时未完结数", "处理完结及时率"], rows,
                   formats={5: PERCENT, 9: PERCENT})
    chart = _bar("各紧急程度及时率", "及时率", ws, (5, 5), n - 1, percent=True)
    chart.add_data(Reference(ws, min_col=9, min_row=1, max_row=n - 1), titles_from_data=True)
    ws.add_chart(chart, "B" + str(n + 3))

    _sheet(wb, "处理时长", ["已解决投诉（件）", "平均处理时长（小时）", "处理时长中位数（小时）"],
           [(handling["resolved"], handling["mean_hours"], handling["median_hours"])])

    dims = sat["dimensions"]
    ws, n = _sheet(wb, "满意度", ["评分", *[d["label"] for d in dims.values()]],
                   [[f"{s} 分", *[d["distribution"][str(s)] for d in dims.values()]] for s in range(1, 6)])
    ws.append([])
    ws.append(["平均分", *[d["mean"] for d in dims.values()]])
    ws.append(["评价数", *[d["answered"] for d in dims.values()]])
    ws.append([f"≤{sat['low_score']} 分占比", *[d["low_share"] for d in dims.values()]])
    for c in range(2, 2 + len(dims)):
        ws.cell(row=ws.max_row, column=c).number_format = PERCENT
    ws.add_chart(_bar("满意度评分分布", "评价数", ws, (2, 1 + len(dims)), n), "F2")

    _sheet(wb, "重复与异议", ["指标", "件数", "占当月投诉比例"],
           [("重复投诉", rates["repeat"]["count"], rates["repeat"]["rate"]),
            ("客户异议", rates["dispute"]["count"], rates["dispute"]["rate"]),
            ("重开", rates["reopen"]["count"], rates["reopen"]["rate"])], formats={3: PERCENT})

    _sheet(wb, "退款退货汇总", ["类型", "笔数", "金额（元）"],
           [(k["label"], k["count"], _yuan(k["amount_cents"])) for k in rem["by_kind"]], formats={3: MONEY})
    kinds = list(labels.REMEDY)
    headers = ["产品", "涉及投诉数"]
    for k in kinds:
        headers += [f"{labels.REMEDY[k]}笔数", f"{labels.REMEDY[k]}金额（元）"]
    rows = []
    for p in rem["per_product"]:
        row = [p["product"], p["complaints"]]
        for k in kinds:
            row += [p[k]["count"], _yuan(p[k]["amount_cents"])]
        rows.append(row)
    _sheet(wb, "客户投诉退货月统计表", headers, rows, formats={4 + 2 * i: MONEY for i in range(len(kinds))})

    _sheet(wb, "投诉量前十产品", ["排名", "产品", "投诉量", "占比", "上月投诉量"],
           [(t["rank"], t["product"], t["count"], t["share"], t["previous"]) for t in figures["top_products"]],
           formats={4: PERCENT})
    _sheet(wb, "未结时间最长投诉", ["投诉编号", "分类", "紧急程度", "责任部门", "状态", "受理时间", "已开放天数"],
           [(o["number"], o["category"], o["urgency"], o["department"], o["status"], _local(o["received_at"]), o["days_open"])
            for o in figures["longest_open"]])

    wb.properties.title = f"{month} 月度投诉报告"
    wb.properties.creator = "kesu"
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()
