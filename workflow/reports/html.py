"""The monthly report as one self-contained HTML page: tables plus the PNG charts embedded as data URIs."""
from __future__ import annotations

import base64
from datetime import datetime
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from ..calendar import SHANGHAI
from . import labels
from .charts import all_charts

_env = Environment(loader=PackageLoader("workflow.reports", "templates"), autoescape=select_autoescape(["html", "j2"]),
                   undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)


def pct(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.1f}%"


def num(value: float | None) -> str:
    return "—" if value is None else f"{value:g}"


def signed(value: int) -> str:
    return f"{value:+d}"


def yuan(cents: int) -> str:
    return f"{cents / 100:,.2f}"


def local(iso: str) -> str:
    return datetime.fromisoformat(iso).astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M")


def page(figures: dict[str, Any], charts: dict[str, bytes] | None = None) -> str:
    charts = charts if charts is not None else all_charts(figures)
    on_time = figures["on_time"]
    urgencies = sorted(set(on_time["response"]["per_urgency"]) | set(on_time["resolution"]["per_urgency"]))
    return _env.get_template("report.html.j2").render(
        f=figures, charts={k: base64.b64encode(v).decode() for k, v in charts.items()},
        as_of=local(figures["as_of"]), dimensions=labels.DIMENSIONS_OF_DISTRIBUTION, urgencies=urgencies,
        remedy_kinds=labels.REMEDY, urgency_label=lambda u: labels.URGENCY.get(u, u),
        pct=pct, num=num, signed=signed, yuan=yuan, local=local)
