"""Retention: archive and purge old closed complaints; export and erase one customer's data.

Closed complaints are kept at least `retention_years` (setting, default 3). After that:

- `archive()` writes the complaints closed before a date, with everything attached to them and
  their customers, to one gzip file of JSON lines: a manifest first (format, cut-off, tables and
  their columns, which columns are personal), then one line per row, then a trailer with the row
  counts and the SHA-256 of the row lines. Personal fields stay exactly as the database holds them:
  AES-GCM ciphertext (base64) under kesu's secret key, and the plain columns that may quote a
  customer (audit details, escalation details, task reasons, pipeline traces, plan notes) are
  sealed the same way, so the archive is no easier to read than the database;
  `read_archive(..., decrypt=True)` opens them with the same key. Keep that key as long as the archive.
- `purge()` anonymises the same complaints in place: texts, subjects, contact details, messages,
  attachments, raw inbound mail, comments and free-text notes are erased, customers left with no
  complaint are deleted; categories, urgencies, products, regions, departments, timestamps, SLA
  figures, scores and remedy amounts stay, so every report about the past remains correct.
- Both refuse a cut-off inside the retention period and are audited.
- `export_customer()` is everything kesu holds about one person (for the data subject);
  `erase_customer()` anonymises all of that person's complaints and deletes the person, whatever
  their age, refusing while one of their complaints is still being handled.
"""
from __future__ import annotations

import base64
import gzip
import hashlib
import json
import os
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any, Iterator

from sqlalchemy import LargeBinary, Table, delete, func, select, type_coerce, update
from sqlalchemy.ext.asyncio import AsyncSession

from models import (AuditEvent, Complaint, ComplaintMessage, ComplaintWorkflow, Customer, CustomerIdentity,
                    Escalation, InboxItem, LabelledExample, OutboxItem, Remedy, SolutionPlan, StoredAttachment,
                    SurveyResponse, Timer, WorkTask, utcnow)
from models.crypto import EncryptedBytes, EncryptedJSON, EncryptedText, keyring

from . import audit
from .calendar import SHANGHAI
from .lifecycle import TERMINAL
from .reports.period import day_start

DEFAULT_YEARS = 3
FORMAT = "kesu-archive"
VERSION = 1
ERASED = "（个人信息已删除）"
CHUNK = 500

# Tables archived with a complaint, and how their rows hang off it.
BY_COMPLAINT = (ComplaintWorkflow, ComplaintMessage, SurveyResponse, SolutionPlan, Remedy, Escalation, WorkTask,
                Timer, AuditEvent, InboxItem, OutboxItem, LabelledExample)
ENCRYPTED = {EncryptedText: "text", EncryptedBytes: "bytes", EncryptedJSON: "json"}
# Plain columns that can hold free text about a customer: sealed (JSON, then AES-GCM) in the archive.
SEALED = {"complaints": ("suggestion", "trace"), "audit_events": ("before", "after", "detail"),
          "escalations": ("detail",), "work_tasks": ("reason",), "inbox_items": ("trace", "last_error"),
          "outbox_items": ("last_error",), "solution_plans": ("measures", "resources", "decision_note"),
          "timers": ("payload",)}


class RetentionError(Exception):
    """Refused: the cut-off is inside the retention period, or a customer is still being served."""


def retention_years(settings: Any = None) -> int:
    years = int(getattr(settings, "retention_years", DEFAULT_YEARS) or DEFAULT_YEARS)
    if years < 1:
        raise RetentionError("retention_years must be at least 1")
    return years


def latest_cutoff(now: datetime, years: int) -> date:
    """The latest `--before` date allowed: `years` before today (Beijing time); 29 Feb → 28 Feb."""
    today = now.astimezone(SHANGHAI).date()
    try:
        return today.replace(year=today.year - years)
    except ValueError:
        return today.replace(year=today.year - years, day=28)


def check_cutoff(before: date, now: datetime, years: int) -> None:
    latest = latest_cutoff(now, years)
    if before > latest:
        raise RetentionError(f"refused: complaints closed on or after {latest.isoformat()} are inside the "
                             f"{years}-year retention period; use --before {latest.isoformat()} or earlier")


def closed_before(before: date):
    return select(Complaint.id).where(Complaint.status.in_(TERMINAL), Complaint.closed_at.is_not(None),
                                      Complaint.closed_at < day_start(before))


# ---------------------------------------------------------------- archive

def _personal(table: Table) -> dict[str, str]:
    return {c.name: ENCRYPTED[type(c.type)] for c in table.columns if type(c.type) in ENCRYPTED}


def _seal(value: Any) -> str:
    return base64.b64encode(keyring().encrypt(json.dumps(value, ensure_ascii=False, default=str).encode())).decode()


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, (bytes, memoryview)):
        return base64.b64encode(bytes(value)).decode()
    return value


def _raw_select(table: Table):
    """All columns, the encrypted ones as stored (ciphertext), not decrypted."""
    return select(*[type_coerce(c, LargeBinary()).label(c.name) if type(c.type) in ENCRYPTED else c
                    for c in table.columns])


@dataclass
class ArchiveResult:
    path: str
    complaints: int
    rows: dict[str, int]
    sha256: str


async def _ids(session: AsyncSession, stmt) -> list[int]:
    return list((await session.scalars(stmt)).all())


async def archive(session: AsyncSession, before: date, path: str | os.PathLike, *, now: datetime | None = None,
                  years: int = DEFAULT_YEARS, actor: str = "cli") -> ArchiveResult:
    """Write the complaints closed before `before` (and what belongs to them) to `path`."""
    now = now or utcnow()
    check_cutoff(before, now, years)
    ids = await _ids(session, closed_before(before).order_by(Complaint.id))
    tables: list[tuple[Table, Any]] = [(Complaint.__table__, lambda chunk: Complaint.id.in_(chunk))]
    for model in BY_COMPLAINT:
        tables.append((model.__table__, lambda chunk, m=model: m.complaint_id.in_(chunk)))
    tables.append((StoredAttachment.__table__, lambda chunk: StoredAttachment.message_id.in_(
        select(ComplaintMessage.id).where(ComplaintMessage.complaint_id.in_(chunk)))))
    customer_ids = sorted(set(await _ids(session, select(Complaint.customer_id).distinct().where(
        Complaint.id.in_(closed_before(before)), Complaint.customer_id.is_not(None)))))
    manifest = {
        "format": FORMAT, "version": VERSION, "created_at": now.isoformat(), "created_by": actor,
        "closed_before": before.isoformat(), "timezone": "Asia/Shanghai", "retention_years": years,
        "complaints": len(ids), "customers": len(customer_ids),
        "personal_data": "columns under `personal` hold the database's AES-GCM ciphertext (base64) of text, JSON "
                         "or bytes; columns under `sealed` hold AES-GCM ciphertext (base64) of their JSON value; "
                         "both open with kesu's secret key (kesu archive --inspect FILE --decrypt)",
        "tables": {t.name: {"columns": [c.name for c in t.columns], "personal": _personal(t),
                            "sealed": list(SEALED.get(t.name, ()))}
                   for t in [x[0] for x in tables] + [Customer.__table__, CustomerIdentity.__table__]},
    }
    counts: dict[str, int] = {name: 0 for name in manifest["tables"]}
    digest = hashlib.sha256()
    target = Path(path)
    tmp = target.with_name(target.name + ".part")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)   # it holds personal data
    with os.fdopen(fd, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as out:
        out.write((json.dumps({"manifest": manifest}, ensure_ascii=False) + "\n").encode())

        async def dump(table: Table, where) -> None:
            result = await session.stream(_raw_select(table).where(where))
            sealed = SEALED.get(table.name, ())
            async for row in result:
                values = {k: _seal(v) if k in sealed and v is not None else _plain(v) for k, v in row._mapping.items()}
                line = (json.dumps({"table": table.name, "row": values}, ensure_ascii=False, default=str)
                        + "\n").encode()
                digest.update(line)
                out.write(line)
                counts[table.name] += 1

        for start in range(0, len(ids), CHUNK):
            chunk = ids[start:start + CHUNK]
            for table, where in tables:
                await dump(table, where(chunk))
        for start in range(0, len(customer_ids), CHUNK):
            chunk = customer_ids[start:start + CHUNK]
            await dump(Customer.__table__, Customer.id.in_(chunk))
            await dump(CustomerIdentity.__table__, CustomerIdentity.customer_id.in_(chunk))
        trailer = {"end": {"rows": counts, "sha256": digest.hexdigest()}}
        out.write((json.dumps(trailer, ensure_ascii=False) + "\n").encode())
    os.replace(tmp, target)
    audit.record(session, actor, "archive", at=now,
                 after={"closed_before": before.isoformat(), "complaints": len(ids), "file": target.name,
                        "sha256": digest.hexdigest()})
    await session.flush()
    return ArchiveResult(str(target), len(ids), counts, digest.hexdigest())


def read_archive(path: str | os.PathLike, *, decrypt: bool = False) -> Iterator[dict[str, Any]]:
    """The archive's lines as dicts (manifest, rows, trailer), checking the trailer's checksum at the
    end; with `decrypt`, personal columns are decrypted with the configured key."""
    digest = hashlib.sha256()
    with gzip.open(path, "rb") as fh:
        first = json.loads(fh.readline())
        manifest = first.get("manifest") or {}
        if manifest.get("format") != FORMAT:
            raise RetentionError(f"{path} is not a kesu archive")
        tables = manifest["tables"]
        yield first
        for line in fh:
            record = json.loads(line)
            if "end" in record:
                if record["end"]["sha256"] != digest.hexdigest():
                    raise RetentionError(f"{path} is damaged: checksum mismatch")
                yield record
                return
            digest.update(line)
            if decrypt:
                _open_row(record["row"], tables.get(record["table"], {}))
            yield record
    raise RetentionError(f"{path} is truncated: no trailer")


def _open_row(row: dict[str, Any], table: dict[str, Any]) -> None:
    ring = keyring()
    for col, kind in table.get("personal", {}).items():
        if row.get(col) is not None:
            plain = ring.decrypt(base64.b64decode(row[col]))
            row[col] = (base64.b64encode(plain).decode() if kind == "bytes" else
                        json.loads(plain) if kind == "json" else plain.decode("utf-8"))
    for col in table.get("sealed", ()):
        if row.get(col) is not None:
            row[col] = json.loads(ring.decrypt(base64.b64decode(row[col])))


# ---------------------------------------------------------------- purge / anonymise

async def anonymise(session: AsyncSession, complaint_ids, *, keep_customers: bool = False) -> dict[str, int]:
    """Erase the personal data of the complaints selected by `complaint_ids` (a select of ids),
    keep what statistics need. Set-based statements, so it scales with the database, not Python."""
    await session.flush()
    counts: dict[str, int] = {}

    async def run(name: str, stmt) -> None:
        result = await session.execute(stmt.execution_options(synchronize_session=False))
        counts[name] = counts.get(name, 0) + (result.rowcount or 0)

    customers = list((await session.scalars(select(Complaint.customer_id).distinct().where(
        Complaint.id.in_(complaint_ids), Complaint.customer_id.is_not(None)))).all())
    messages = select(ComplaintMessage.id).where(ComplaintMessage.complaint_id.in_(complaint_ids))
    await run("attachments", delete(StoredAttachment).where(StoredAttachment.message_id.in_(messages)))
    await run("complaint_messages", delete(ComplaintMessage).where(ComplaintMessage.complaint_id.in_(complaint_ids)))
    await run("labelled_examples", delete(LabelledExample).where(LabelledExample.complaint_id.in_(complaint_ids)))
    await run("complaints", update(Complaint).where(Complaint.id.in_(complaint_ids)).values(
        subject=None, text=ERASED, reply_to=None, order_no=None, customer_id=None, suggestion={}, trace=[]))
    await run("survey_responses", update(SurveyResponse).where(SurveyResponse.complaint_id.in_(complaint_ids))
              .values(comment=None))
    await run("work_tasks", update(WorkTask).where(WorkTask.complaint_id.in_(complaint_ids))
              .values(reason=ERASED, note=None))
    await run("escalations", update(Escalation).where(Escalation.complaint_id.in_(complaint_ids)).values(detail=None))
    await run("solution_plans", update(SolutionPlan).where(SolutionPlan.complaint_id.in_(complaint_ids))
              .values(resources=None, decision_note=None))
    await run("inbox_items", update(InboxItem).where(InboxItem.complaint_id.in_(complaint_ids))
              .values(message={}, raw=None, last_error=None))
    await run("outbox_items", update(OutboxItem).where(OutboxItem.complaint_id.in_(complaint_ids))
              .values(payload={}, reply_to={}, recipient_hash=None, last_error=None))
    # Free text in the trail (a dispute's reason) goes too; who did what and when stays. This is
    # a Core statement: the ORM refuses to change audit events, and only erasure may.
    await run("audit_events", update(AuditEvent).where(AuditEvent.complaint_id.in_(complaint_ids)).values(detail=None))
    # Plans' measures keep kind and amount, lose the free-text detail.
    plans = (await session.execute(select(SolutionPlan.id, SolutionPlan.measures)
                                   .where(SolutionPlan.complaint_id.in_(complaint_ids)))).all()
    for plan_id, measures in plans:
        if any("detail" in m for m in measures or []):
            await session.execute(update(SolutionPlan).where(SolutionPlan.id == plan_id).values(
                measures=[{k: v for k, v in m.items() if k != "detail"} for m in measures]))
    counts["customers"] = 0
    if customers and not keep_customers:
        still = set((await session.scalars(select(Complaint.customer_id).distinct()
                                           .where(Complaint.customer_id.in_(customers)))).all())
        gone = [c for c in customers if c not in still]
        for start in range(0, len(gone), CHUNK):
            chunk = gone[start:start + CHUNK]
            await session.execute(delete(CustomerIdentity).where(CustomerIdentity.customer_id.in_(chunk)))
            counts["customers"] += (await session.execute(delete(Customer).where(Customer.id.in_(chunk)))).rowcount
    return counts


async def purge(session: AsyncSession, before: date, *, now: datetime | None = None, years: int = DEFAULT_YEARS,
                actor: str = "cli") -> dict[str, int]:
    """Anonymise the complaints closed before `before`; refused inside the retention period."""
    now = now or utcnow()
    check_cutoff(before, now, years)
    ids = closed_before(before)
    n = int(await session.scalar(select(func.count()).select_from(ids.subquery())) or 0)
    counts = await anonymise(session, ids)
    counts["complaints"] = n
    audit.record(session, actor, "purge", at=now, after={"closed_before": before.isoformat(), **counts})
    await session.flush()
    return counts


# ---------------------------------------------------------------- one customer's data

async def find_customer(session: AsyncSession, *, customer_id: int | None = None, phone: str | None = None,
                        email: str | None = None) -> Customer | None:
    if customer_id is not None:
        return await session.get(Customer, customer_id)
    kind, value = ("phone", phone) if phone else ("email", email)
    if not value:
        raise RetentionError("give a customer id, phone or e-mail address")
    found = await session.scalar(select(CustomerIdentity.customer_id).where(
        CustomerIdentity.kind == kind, CustomerIdentity.value_hash == keyring().blind_index(kind, value)))
    return None if found is None else await session.get(Customer, found)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


async def export_customer(session: AsyncSession, customer: Customer, *, actor: str = "cli",
                          now: datetime | None = None) -> dict[str, Any]:
    """Everything kesu holds about one customer, readable (decrypted), for the data subject."""
    identities = (await session.scalars(select(CustomerIdentity).where(CustomerIdentity.customer_id == customer.id)
                                        .order_by(CustomerIdentity.id))).all()
    complaints = (await session.scalars(select(Complaint).where(Complaint.customer_id == customer.id)
                                        .order_by(Complaint.received_at))).all()
    ids = [c.id for c in complaints]
    messages = (await session.scalars(select(ComplaintMessage).where(ComplaintMessage.complaint_id.in_(ids))
                                      .order_by(ComplaintMessage.created_at, ComplaintMessage.id))).all()
    surveys = (await session.scalars(select(SurveyResponse).where(SurveyResponse.complaint_id.in_(ids))
                                     .order_by(SurveyResponse.id))).all()
    remedies = (await session.scalars(select(Remedy).where(Remedy.complaint_id.in_(ids)).order_by(Remedy.id))).all()
    by_complaint: dict[int, dict[str, list]] = {i: {"messages": [], "surveys": [], "remedies": []} for i in ids}
    for m in messages:
        by_complaint[m.complaint_id]["messages"].append({
            "direction": m.direction, "channel": m.channel, "kind": m.kind, "at": _iso(m.created_at),
            "from": "customer" if m.author == "customer" else "kesu", "subject": m.subject, "text": m.text})
    for s in surveys:
        by_complaint[s.complaint_id]["surveys"].append({
            "at": _iso(s.created_at), "efficiency": s.efficiency, "attitude": s.attitude, "solution": s.solution,
            "comment": s.comment})
    for r in remedies:
        by_complaint[r.complaint_id]["remedies"].append({"kind": r.kind, "amount_yuan": r.amount_cents / 100,
                                                         "at": _iso(r.recorded_at)})
    audit.record(session, actor, "customer_exported", at=now or utcnow(), after={"customer": customer.id})
    return {
        "customer": {"id": customer.id, "name": customer.name, "phone": customer.phone, "email": customer.email,
                     "address": customer.address, "region": customer.region, "since": _iso(customer.created_at)},
        "identities": [{"kind": i.kind, "value": i.value, "since": _iso(i.created_at)} for i in identities],
        "complaints": [{
            "number": c.number, "channel": c.channel, "status": c.status, "category": c.category,
            "urgency": c.urgency, "product": c.product, "order_no": c.order_no, "region": c.region,
            "received_at": _iso(c.received_at), "resolved_at": _iso(c.resolved_at), "closed_at": _iso(c.closed_at),
            "subject": c.subject, "text": c.text, **by_complaint[c.id]} for c in complaints],
    }


async def erase_customer(session: AsyncSession, customer: Customer, *, actor: str = "cli",
                         now: datetime | None = None) -> dict[str, int]:
    """Erase one customer on request: their complaints are anonymised (statistics kept) and the
    customer and their identities deleted. Refused while a complaint of theirs is not closed."""
    open_numbers = (await session.scalars(select(Complaint.number).where(
        Complaint.customer_id == customer.id, Complaint.status.not_in(TERMINAL)))).all()
    if open_numbers:
        raise RetentionError(f"refused: complaint(s) {', '.join(open_numbers)} of this customer are still being "
                             "handled; close them first")
    customer_id = customer.id
    # The ids first: anonymising unlinks the complaints from the customer.
    ids = list((await session.scalars(select(Complaint.id).where(Complaint.customer_id == customer_id))).all())
    counts = await anonymise(session, select(Complaint.id).where(Complaint.id.in_(ids)), keep_customers=True)
    await session.execute(delete(CustomerIdentity).where(CustomerIdentity.customer_id == customer_id))
    await session.execute(delete(Customer).where(Customer.id == customer_id)
                          .execution_options(synchronize_session=False))
    session.expunge(customer)
    audit.record(session, actor, "customer_erased", at=now or utcnow(),
                 after={"customer": customer_id, "complaints": len(ids)})
    await session.flush()
    return counts
