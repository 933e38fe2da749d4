from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Float, ForeignKey, Index, Integer, String, false
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .base import Base, UTCDateTime, utcnow
from .crypto import EncryptedBytes, EncryptedJSON, EncryptedText


class Complaint(Base):
    __tablename__ = "complaints"
    __table_args__ = (
        Index("ix_complaints_status_dept", "status", "department_code"),
        Index("ix_complaints_customer_category", "customer_id", "category"),
        Index("ix_complaints_received", "received_at"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(32), unique=True)
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id"))
    channel: Mapped[str] = mapped_column(String(40))
    status: Mapped[str] = mapped_column(String(24), default="registered")
    category: Mapped[str] = mapped_column(String(32))
    urgency: Mapped[str] = mapped_column(String(4))
    category_confidence: Mapped[float] = mapped_column(Float, default=0.0)
    urgency_confidence: Mapped[float] = mapped_column(Float, default=0.0)
    needs_review: Mapped[bool] = mapped_column(Boolean, default=False)
    # Suggested P1/P2 but the P0 score is in the classifier's watch band: reviewed first.
    p0_watch: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    reviewed: Mapped[bool] = mapped_column(Boolean, default=False)
    suggestion: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # classifier output with reasons
    department_code: Mapped[str] = mapped_column(ForeignKey("departments.code"))
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id"))
    subject: Mapped[str | None] = mapped_column(EncryptedText)
    text: Mapped[str] = mapped_column(EncryptedText)       # the first message, as the customer wrote it
    product: Mapped[str | None] = mapped_column(String(128))
    order_no: Mapped[str | None] = mapped_column(String(64))
    region: Mapped[str | None] = mapped_column(String(64))
    reply_to: Mapped[dict[str, Any] | None] = mapped_column(EncryptedJSON)  # how to answer on the origin channel
    repeat_of_id: Mapped[int | None] = mapped_column(ForeignKey("complaints.id"))
    trace: Mapped[list[Any]] = mapped_column(JSON, default=list)           # why: each pipeline step's decision
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)
    registered_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    response_due: Mapped[datetime] = mapped_column(UTCDateTime)
    resolve_due: Mapped[datetime] = mapped_column(UTCDateTime)
    first_response_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    # Relationships let a whole batch be inserted in one flush (foreign keys resolved then).
    customer: Mapped["Customer | None"] = relationship(lazy="raise")


class ComplaintMessage(Base):
    """The thread of a complaint across channels, inbound and outbound."""
    __tablename__ = "complaint_messages"
    id: Mapped[int] = mapped_column(primary_key=True)
    complaint_id: Mapped[int] = mapped_column(ForeignKey("complaints.id"), index=True)
    direction: Mapped[str] = mapped_column(String(3))       # in | out
    kind: Mapped[str] = mapped_column(String(16), default="message")  # message, auto_reply, bounce, ack, reply...
    channel: Mapped[str] = mapped_column(String(40))
    author: Mapped[str] = mapped_column(String(64))         # customer, system, agent:<id>
    subject: Mapped[str | None] = mapped_column(EncryptedText)
    text: Mapped[str] = mapped_column(EncryptedText)
    message_id: Mapped[str | None] = mapped_column(String(255), index=True)  # e.g. a Message-ID
    inbox_item_id: Mapped[int | None] = mapped_column(ForeignKey("inbox_items.id"))
    outbox_item_id: Mapped[int | None] = mapped_column(ForeignKey("outbox_items.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    complaint: Mapped[Complaint] = relationship(lazy="raise")


class StoredAttachment(Base):
    __tablename__ = "attachments"
    id: Mapped[int] = mapped_column(primary_key=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("complaint_messages.id"), index=True)
    name: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(128))
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    data: Mapped[bytes | None] = mapped_column(EncryptedBytes)
    note: Mapped[str | None] = mapped_column(String(255))
    message: Mapped[ComplaintMessage] = relationship(lazy="raise")


class DailySerial(Base):
    """The last serial handed out per day and department; incremented under a row lock."""
    __tablename__ = "daily_serials"
    day: Mapped[str] = mapped_column(String(8), primary_key=True)
    department_code: Mapped[str] = mapped_column(String(8), primary_key=True)
    last: Mapped[int] = mapped_column(Integer)


class LabelledExample(Base):
    """An agent's confirmation or correction of a suggestion: training data for the classifier."""
    __tablename__ = "labelled_examples"
    id: Mapped[int] = mapped_column(primary_key=True)
    complaint_id: Mapped[int] = mapped_column(ForeignKey("complaints.id"), index=True)
    text: Mapped[str] = mapped_column(EncryptedText)
    category: Mapped[str] = mapped_column(String(32))
    urgency: Mapped[str] = mapped_column(String(4))
    suggested_category: Mapped[str | None] = mapped_column(String(32))
    suggested_urgency: Mapped[str | None] = mapped_column(String(4))
    model_version: Mapped[str | None] = mapped_column(String(64))
    agent_id: Mapped[int] = mapped_column(ForeignKey("agents.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class SurveyResponse(Base):
    """A customer's satisfaction rating (1-5 per dimension) of one complaint's handling."""
    __tablename__ = "survey_responses"
    id: Mapped[int] = mapped_column(primary_key=True)
    complaint_id: Mapped[int] = mapped_column(ForeignKey("complaints.id"), index=True)
    channel: Mapped[str] = mapped_column(String(40))
    efficiency: Mapped[int | None] = mapped_column(Integer)
    attitude: Mapped[int | None] = mapped_column(Integer)
    solution: Mapped[int | None] = mapped_column(Integer)
    comment: Mapped[str | None] = mapped_column(EncryptedText)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
