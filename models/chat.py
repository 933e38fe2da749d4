"""Web chat sessions and their messages.

They live in the database, not in a process, so a customer whose socket reconnects to another
kesu process behind a load balancer finds the same conversation. What a customer typed and the
dialogue's slots (phone, e-mail, order number...) are personal data: encrypted at rest.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, UTCDateTime, utcnow
from .crypto import EncryptedJSON, EncryptedText


class ChatSession(Base):
    """One conversation of one browser; the browser holds a secret token, we keep only its hash."""
    __tablename__ = "chat_sessions"
    __table_args__ = (Index("ix_chat_sessions_ip", "ip_hash", "created_at"),
                      Index("ix_chat_sessions_human", "needs_human", "last_seen_at"))
    id: Mapped[int] = mapped_column(primary_key=True)
    public_id: Mapped[str] = mapped_column(String(32), unique=True)     # the sender handle; shown to agents
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)    # SHA-256 of the browser's token
    state: Mapped[dict[str, Any]] = mapped_column(EncryptedJSON)        # the dialogue's mode and slots
    next_seq: Mapped[int] = mapped_column(Integer, default=0)           # last sequence number handed out
    needs_human: Mapped[bool] = mapped_column(Boolean, default=False)
    ip_hash: Mapped[str | None] = mapped_column(String(64))             # blind index, for rate limits only
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ChatMessage(Base):
    """One line of a conversation, in or out; `seq` orders it within its session."""
    __tablename__ = "chat_messages"
    __table_args__ = (UniqueConstraint("session_id", "seq"), UniqueConstraint("session_id", "client_id"),
                      Index("ix_chat_messages_created", "created_at"))
    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("chat_sessions.id"))
    seq: Mapped[int] = mapped_column(Integer)
    direction: Mapped[str] = mapped_column(String(3))                   # in | out
    author: Mapped[str] = mapped_column(String(64))                     # customer, bot, agent:<id>, system
    text: Mapped[str] = mapped_column(EncryptedText)
    client_id: Mapped[str | None] = mapped_column(String(64))           # the widget's id: a resend is stored once
    meta: Mapped[dict[str, Any] | None] = mapped_column(JSON)           # quick-reply options; never personal
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
