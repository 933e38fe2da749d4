"""Report months, labels and rendering of an empty month (no database)."""
from __future__ import annotations

import io
import json
from datetime import datetime, timezone

import pytest
from openpyxl import load_workbook

from workflow.reports import Month, render
from workflow.reports.labels import label


def test_month_parse_and_bounds_in_beijing_time():
    m = Month.parse("2026-10")
    assert str(m) == "2026-10" and m.start.isoformat() == "2026-10-01T00:00:00+08:00"
    assert m.end == Month(2026, 11).start and len(m.days()) == 31
    assert Month(2026, 1).previous() == Month(2025, 12) and Month(2025, 12).next() == Month(2026, 1)
    assert len(Month(2028, 2).days()) == 29
    # 16:30 UTC on 31 October is already 1 November in Beijing
    assert Month.containing(datetime(2026, 10, 31, 16, 30, tzinfo=timezone.utc)) == Month(2026, 11)


@pytest.mark.parametrize("text", ["2026-13", "2026-00", "26-10", "2026/10", "", "1999-01"])
def test_bad_months_are_refused(text):
    with pytest.raises(ValueError):
        Month.parse(text)


def test_labels_fall_back_to_the_code():
    assert label("category", "logistics") == "物流配送"
    assert label("category", "brand_new") == "brand_new"
    assert label("channel", "webhook:shop") == "接口（shop）"
    assert label("region", None) == "未填写"


def empty_figures() -> dict:
    dims = {d: {"label": d, "answered": 0, "mean": None, "distribution": {str(s): 0 for s in range(1, 6)}, "low": 0,
                "low_share": None} for d in ("efficiency", "attitude", "solution")}
    block = {"done": 0, "on_time": 0, "overdue_open": 0, "due": 0, "rate": None}
    return {"month": "2026-02", "timezone": "Asia/Shanghai", "as_of": "2026-03-01T00:00:00+00:00",
            "volume": {"total": 0, "previous_total": 0, "change": 0, "change_rate": None},
            "per_day": [{"day": d.isoformat(), "count": 0} for d in Month(2026, 2).days()],
            "distribution": {d: [] for d in ("category", "urgency", "channel", "region", "product", "department")},
            "on_time": {"response": {"overall": block, "per_urgency": {}},
                        "resolution": {"overall": block, "per_urgency": {}}},
            "handling": {"resolved": 0, "mean_hours": None, "median_hours": None},
            "satisfaction": {"responses": 0, "low_score": 3, "dimensions": dims, "any_low": 0, "any_low_share": None},
            "rates": {k: {"count": 0, "rate": None} for k in ("repeat", "dispute", "reopen")},
            "remedies": {"by_kind": [], "per_product": [], "count": 0, "amount_cents": 0},
            "top_products": [], "longest_open": []}


def test_an_empty_month_renders_in_every_format():
    figures = empty_figures()
    assert json.loads(render(figures, "json").body)["volume"]["total"] == 0
    wb = load_workbook(io.BytesIO(render(figures, "xlsx").body))
    assert wb["概览"]["B4"].value == 0
    html = render(figures, "html").body.decode()
    assert html.count("data:image/png;base64,") == 4 and "本月无退款退货记录" in html
    with pytest.raises(ValueError):
        render(figures, "pdf")
