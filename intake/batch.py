"""What the steps of one batch look up, fetched once for the whole batch.

The steps add rows to the session without flushing; the worker numbers the new complaints
and inserts everything in one flush, so a batch costs a few statements per table instead of
a few dozen per item.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Sequence

from sqlalchemy import func, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from models import Complaint, Customer, CustomerIdentity, OutboxItem, RoutingRule, utcnow

CLOSED = ("closed", "merged", "withdrawn")
DUPLICATE_WINDOW = timedelta(hours=24)


@dataclass
class Registration:
    """A complaint registered in this batch, waiting for its number."""
    complaint: Complaint
    department: str
    owner: Any                                          # the item's Context
    trace_entry: dict[str, Any] | None = None           # the register step's note, completed with the number
    finish: list[Any] = field(default_factory=list)     # callables run once the complaint has its number and id


@dataclass
class Batch:
    customers: dict[tuple[str, str], Customer] = field(default_factory=dict)   # (kind, hash) -> customer
    complaints_by_number: dict[str, Complaint] = field(default_factory=dict)
    recent_by_customer: dict[Any, list[Complaint]] = field(default_factory=lambda: defaultdict(list))
    routes: dict[str, str] = field(default_factory=dict)
    acks_last_hour: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    registrations: list[Registration] = field(default_factory=list)
    rows: dict[Any, list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))  # bulk inserts
    identities: list[tuple[Customer, str, str, str]] = field(default_factory=list)  # customer, kind, hash, value

    def insert(self, model, **values: Any) -> None:
        """Queue a row that nothing in the batch needs back: written with one statement per table."""
        self.rows[model].append(values)

    def register(self, owner, complaint: Complaint, department: str, trace_entry: dict[str, Any]) -> Registration:
        reg = Registration(complaint, department, owner, trace_entry)
        self.registrations.append(reg)
        if complaint.customer is not None:
            self.recent_by_customer[complaint.customer].append(complaint)
        return reg

    def after_numbering(self, complaint: Complaint, finish) -> None:
        next(r for r in self.registrations if r.complaint is complaint).finish.append(finish)

    def forget(self, owner) -> None:
        """An item failed: its registrations go, so no later item threads onto them."""
        for reg in [r for r in self.registrations if r.owner is owner]:
            self.registrations.remove(reg)
            for complaints in self.recent_by_customer.values():
                if reg.complaint in complaints:
                    complaints.remove(reg.complaint)

    @classmethod
    async def prefetch(cls, session: AsyncSession, identity_keys: set[tuple[str, str]], numbers: set[str],
                       recipients: set[str], oldest_received) -> "Batch":
        batch = cls()
        batch.routes = dict((await session.execute(select(RoutingRule.category, RoutingRule.department_code))).all())
        if identity_keys:
            rows = (await session.execute(
                select(CustomerIdentity.kind, CustomerIdentity.value_hash, CustomerIdentity.customer_id)
                .where(tuple_(CustomerIdentity.kind, CustomerIdentity.value_hash).in_(list(identity_keys)))
                .order_by(CustomerIdentity.customer_id))).all()
            ids = {r.customer_id for r in rows}
            customers = {c.id: c for c in (await session.scalars(select(Customer).where(Customer.id.in_(ids))))}
            for r in rows:
                batch.customers.setdefault((r.kind, r.value_hash), customers[r.customer_id])
            if ids:
                recent = await session.scalars(select(Complaint).where(
                    Complaint.customer_id.in_(ids), Complaint.received_at >= oldest_received - DUPLICATE_WINDOW,
                    Complaint.status.not_in(CLOSED)).order_by(Complaint.id))
                for c in recent:
                    batch.recent_by_customer[customers[c.customer_id]].append(c)
        if numbers:
            batch.complaints_by_number = {c.number: c for c in await session.scalars(
                select(Complaint).where(Complaint.number.in_(numbers)))}
        if recipients:
            batch.acks_last_hour.update((await session.execute(
                select(OutboxItem.recipient_hash, func.count()).where(
                    OutboxItem.recipient_hash.in_(recipients), OutboxItem.kind == "ack",
                    OutboxItem.created_at >= utcnow() - timedelta(hours=1))
                .group_by(OutboxItem.recipient_hash))).all())
        return batch


def identity_keys_of(keyring, identities: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
    return [(kind, keyring.blind_index(kind, value)) for kind, value in identities]
