"""Channel-neutral texts to customers (connectors may render richer templates from the same data)."""
from __future__ import annotations

from datetime import datetime

from .calendar import SHANGHAI
from .sla import RESPONSE_PROMISE


def local_time(dt: datetime) -> str:
    return dt.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M")


def acknowledgement(number: str, urgency: str, response_due: datetime, attachment_notes: list[str] = ()) -> dict:
    lines = [f"您好，您的投诉已受理，编号 {number}。",
             f"我们将在{RESPONSE_PROMISE[urgency]}内（{local_time(response_due)} 前）与您联系。"]
    if urgency == "P0":
        lines.append("您反映的问题情况紧急，已同步通知主管优先处理。")
    lines.extend(attachment_notes)
    lines.append("回复本消息即可补充信息，请保留投诉编号以便查询。")
    return {"template": "ack", "automatic": True, "number": number, "urgency": urgency,
            "response_due": response_due.isoformat(), "subject": f"[{number}] 您的投诉已受理",
            "text": "\n".join(lines)}
