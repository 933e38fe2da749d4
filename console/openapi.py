"""The agents' JSON API as an OpenAPI 3.1 document (served at /api/openapi.json).

A test compares it with the application's routes, so an endpoint cannot be added or removed
without this document following.
"""
from __future__ import annotations

import re
from typing import Any

from workflow.lifecycle import ACTIONS
from workflow.plans import MEASURES

_OBJ = {"type": "object"}
_ERROR = {"description": "refused", "content": {"application/json": {"schema": {
    "type": "object", "properties": {"error": {"type": "string"}, "field": {"type": "string"}},
    "required": ["error"]}}}}

PLAN_BODY = {"type": "object", "required": ["measures", "deadline"], "properties": {
    "measures": {"type": "array", "minItems": 1, "maxItems": 20, "items": {"type": "object", "required": ["kind"],
                 "properties": {"kind": {"enum": list(MEASURES)}, "detail": {"type": "string", "maxLength": 500},
                                "amount": {"type": "string", "description": "yuan, e.g. 199.50"}}}},
    "deadline": {"type": "string", "description": "ISO 8601; Beijing time when no offset is given"},
    "resources": {"type": "string", "maxLength": 2000},
    "estimated_cost": {"type": "string", "description": "yuan; the sum of the measures' amounts when omitted"}}}

ACTION_BODY = {"type": "object", "description": "parameters of the action", "properties": {
    "assignee_id": {"type": "integer", "description": "assign: the agent (default: yourself)"},
    "result": {"type": "string", "description": "resolve: the result told to the customer"},
    "reason": {"type": "string", "description": "dispute, withdraw"},
    "note": {"type": "string", "description": "confirm, reopen, close, approve_plan, reject_plan"},
    "plan_id": {"type": "integer", "description": "approve_plan, reject_plan"},
    "into": {"type": "string", "description": "merge: the number of the complaint that carries on"},
    "text": {"type": "string", "description": "await_customer: the question to the customer"},
    "efficiency": {"type": "integer", "minimum": 1, "maximum": 5},
    "attitude": {"type": "integer", "minimum": 1, "maximum": 5},
    "solution": {"type": "integer", "minimum": 1, "maximum": 5},
    "comment": {"type": "string"}},
    "oneOf": [{"title": "draft_plan", **PLAN_BODY}, _OBJ]}

# (method, path, summary, request body schema or None, public)
ENDPOINTS: list[tuple[str, str, str, dict | None, bool]] = [
    ("get", "/healthz", "Liveness and database check", None, True),
    ("get", "/api/openapi.json", "This document", None, True),
    ("post", "/api/tokens", "Exchange name and password for a bearer token",
     {"type": "object", "required": ["name", "password"],
      "properties": {"name": {"type": "string"}, "password": {"type": "string"}}}, True),
    ("post", "/api/complaints", "Register a phone or walk-in complaint (Idempotency-Key header honoured)",
     {"type": "object", "required": ["text"], "properties": {
         "channel": {"enum": ["phone", "walk_in"]}, "text": {"type": "string"},
         "customer": {"type": "object", "properties": {k: {"type": "string"} for k in
                                                        ("name", "phone", "email", "region")}},
         "product": {"type": "string"}, "order_no": {"type": "string"}}}, False),
    ("get", "/api/complaints", "List complaints (filters: status, category, urgency, department; page)", None, False),
    ("get", "/api/complaints/{number}", "One complaint with its thread (contacts masked unless you handle it)",
     None, False),
    ("post", "/api/complaints/{number}/review", "Accept or correct the suggested category and urgency "
     "(stored as a labelled example; deadlines follow the urgency)",
     {"type": "object", "required": ["category", "urgency"], "properties": {
         "category": {"type": "string"}, "urgency": {"enum": ["P0", "P1", "P2"]}}}, False),
    ("get", "/api/complaints/{number}/workflow", "Everything the complaint page shows: thread, suggestion and "
     "reasons, customer history and repeats, plans, tasks, escalations, audit trail, allowed actions", None, False),
    ("get", "/api/complaints/{number}/audit", "The audit trail (read only: no API edits it)", None, False),
    ("post", "/api/complaints/{number}/actions/{action}", "Take a lifecycle action: " + ", ".join(ACTIONS),
     ACTION_BODY, False),
    ("post", "/api/complaints/{number}/replies", "Write to the customer on the origin channel "
     "(phone and walk-in: record what was said on the call)",
     {"type": "object", "required": ["text"], "properties": {"text": {"type": "string", "maxLength": 5000}}}, False),
    ("get", "/api/queues/{queue}", "A work queue: review (least confident suggestions first), mine, "
     "at-risk (by time left), disputed", None, False),
    ("get", "/api/tasks", "Open (or ?status=done) call-back and call tasks you can do", None, False),
    ("post", "/api/tasks/{id}/done", "Finish a task (a call-back closes its complaint)",
     {"type": "object", "properties": {"note": {"type": "string", "maxLength": 2000}}}, False),
    ("get", "/api/dead-letters", "Dead outbox rows and quarantined inbox items (supervisor and above)", None, False),
    ("post", "/api/outbox/{id}/{op}", "retry or discard a dead outbox row (audited)", None, False),
    ("post", "/api/inbox/{id}/{op}", "retry or discard a quarantined inbox item (audited)", None, False),
    ("get", "/api/reports", "Kept monthly reports (manager and above)", None, False),
    ("get", "/api/reports/{month}", "A month's report: ?format=json|xlsx|html", None, False),
    ("post", "/api/reports/{month}", "Compute and keep a month's report again (manager and above)", None, False),
    ("get", "/api/alerts", "Spike alerts (supervisor and above)", None, False),
    ("get", "/api/alerts/{id}", "One spike alert with its complaint numbers", None, False),
    ("post", "/api/alerts/{id}/ack", "Acknowledge a spike alert", None, False),
    ("get", "/api/notices", "Notices for your role and department", None, False),
    ("get", "/api/chats", "Web chat conversations (?waiting=0 for all)", None, False),
    ("get", "/api/chats/{chat}/messages", "A web chat conversation's messages", None, False),
    ("post", "/api/chats/{chat}/messages", "Answer in a web chat conversation",
     {"type": "object", "required": ["text"], "properties": {"text": {"type": "string"}}}, False),
    ("post", "/api/chats/{chat}/release", "Hand a web chat conversation back to the bot", None, False),
]


def _operation(method: str, path: str, summary: str, body: dict | None, public: bool) -> dict[str, Any]:
    op: dict[str, Any] = {
        "summary": summary,
        "operationId": re.sub(r"\W+", "_", f"{method}{path}").strip("_"),
        "parameters": [{"name": p, "in": "path", "required": True, "schema": {"type": "string"}}
                       for p in re.findall(r"{(\w+)}", path)],
        "responses": {"200": {"description": "OK", "content": {"application/json": {"schema": _OBJ}}},
                      "400": _ERROR, "401": _ERROR, "403": _ERROR, "404": _ERROR, "409": _ERROR},
    }
    if method == "post" and path in ("/api/complaints", "/api/tokens", "/api/complaints/{number}/replies"):
        op["responses"]["201"] = op["responses"].pop("200")
    if body is not None:
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": body}}}
    if public:
        op["security"] = []
    return op


def build() -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for method, path, summary, body, public in ENDPOINTS:
        paths.setdefault(path, {})[method] = _operation(method, path, summary, body, public)
    return {
        "openapi": "3.1.0",
        "info": {"title": "kesu agents' API", "version": "1",
                 "description": "Complaint handling: review, assignment, plans and approval, replies, "
                                "lifecycle actions, queues, tasks, dead letters. Errors are "
                                "{\"error\": ..., \"field\": ...} with the HTTP status."},
        "components": {"securitySchemes": {
            "bearer": {"type": "http", "scheme": "bearer", "description": "a token from POST /api/tokens"},
            "session": {"type": "apiKey", "in": "cookie", "name": "kesu_session",
                        "description": "the console's session; state-changing requests also need the "
                                       "X-CSRF-Token header"}}},
        "security": [{"bearer": []}, {"session": []}],
        "paths": paths,
    }


OPENAPI = build()
