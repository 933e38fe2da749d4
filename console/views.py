"""How complaints look in the API: personal data masked unless the viewer handles the complaint."""
from __future__ import annotations

from typing import Any

from models import Complaint, ComplaintMessage, Customer
from models.crypto import mask

CATEGORY_LABELS = {"product_quality": "产品质量", "logistics": "物流配送", "service": "服务态度",
                   "price_refund": "价格退款", "system_fault": "系统故障", "other": "其他投诉",
                   "non_complaint": "非投诉"}


def _iso(dt) -> str | None:
    return dt.isoformat() if dt else None


def complaint_summary(c: Complaint) -> dict[str, Any]:
    return {
        "number": c.number, "status": c.status, "channel": c.channel,
        "category": c.category, "category_label": CATEGORY_LABELS.get(c.category, c.category),
        "category_confidence": round(c.category_confidence, 3),
        "urgency": c.urgency, "urgency_confidence": round(c.urgency_confidence, 3),
        "needs_review": c.needs_review, "p0_watch": c.p0_watch, "reviewed": c.reviewed, "department": c.department_code,
        "product": c.product, "order_no": c.order_no, "region": c.region,
        "received_at": _iso(c.received_at), "registered_at": _iso(c.registered_at),
        "response_due": _iso(c.response_due), "resolve_due": _iso(c.resolve_due),
    }


def complaint_detail(c: Complaint, customer: Customer | None, messages: list[ComplaintMessage],
                     show_contacts: bool) -> dict[str, Any]:
    def pii(value: str | None) -> str | None:
        return value if show_contacts else mask(value)

    out = complaint_summary(c)
    out.update({
        "subject": pii(c.subject), "text": pii(c.text),
        "reasons": list((c.suggestion or {}).get("reasons", [])),
        "suggestion": c.suggestion, "trace": c.trace,
        "customer": None if customer is None else {
            "id": customer.id, "name": customer.name if show_contacts else _mask_name(customer.name),
            "phone": pii(customer.phone), "email": pii(customer.email), "region": customer.region},
        "messages": [{"direction": m.direction, "kind": m.kind, "channel": m.channel, "author": m.author,
                      "subject": pii(m.subject), "text": pii(m.text), "at": _iso(m.created_at)} for m in messages],
    })
    return out


def _mask_name(name: str | None) -> str | None:
    return None if not name else name[0] + "*" * max(1, len(name) - 1)
