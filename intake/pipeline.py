"""The intake pipeline: a named list of steps run on one inbox item inside one transaction.

Each step records its decision in `ctx.trace`, so an agent can see why a complaint got
its category, urgency, department and thread.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from connectors.base import InboundMessage
from models import Complaint, Customer, InboxItem


class Quarantine(Exception):
    """The item cannot be processed as it is; kept with the reason for an agent, never dropped."""


@dataclass
class Services:
    """What steps need besides the session: built once by the daemon."""
    settings: Any                     # intake.settings.Settings
    calendar: Any                     # workflow.calendar.WorkCalendar
    keyring: Any                      # models.crypto.Keyring
    outbound_channels: frozenset[str] = frozenset()   # channels we can answer on


@dataclass
class Context:
    session: AsyncSession
    item: InboxItem
    msg: InboundMessage
    services: Services
    text: str = ""                    # the cleaned text, set by normalize
    suggestion: Any = None            # classifier.Suggestion, computed for the whole batch
    customer: Customer | None = None
    complaint: Complaint | None = None
    threaded: bool = False            # appended to an existing complaint
    department: str | None = None
    identities: list[tuple[str, str]] = field(default_factory=list)   # (kind, value) of the sender
    trace: list[dict[str, Any]] = field(default_factory=list)
    stop: bool = False                # a step decided nothing further applies (e.g. an auto-reply)
    batch: Any = None                 # intake.batch.Batch: look-ups shared by the whole batch
    added: list[Any] = field(default_factory=list)   # rows this item added (removed again if it fails)

    def note(self, step: str, decision: str, **data: Any) -> dict[str, Any]:
        entry = {"step": step, "decision": decision, **data}
        self.trace.append(entry)
        return entry

    def add(self, row: Any) -> Any:
        self.session.add(row)
        self.added.append(row)
        return row


class Step(Protocol):
    name: str

    async def run(self, ctx: Context) -> None: ...


class Pipeline:
    def __init__(self, steps: list[Step]):
        self.steps = steps

    async def run(self, ctx: Context) -> Context:
        for step in self.steps:
            if ctx.stop:
                break
            await step.run(ctx)
        return ctx
