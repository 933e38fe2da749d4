from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .base import Base, UTCDateTime, utcnow
from .crypto import EncryptedText


class Customer(Base):
    """A person, linked across channels by their identities. Personal fields are encrypted."""
    __tablename__ = "customers"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str | None] = mapped_column(EncryptedText)
    phone: Mapped[str | None] = mapped_column(EncryptedText)
    email: Mapped[str | None] = mapped_column(EncryptedText)
    address: Mapped[str | None] = mapped_column(EncryptedText)
    region: Mapped[str | None] = mapped_column(String(64))   # province/city: used in reports, not personal
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    identities: Mapped[list["CustomerIdentity"]] = relationship(back_populates="customer", lazy="raise")


class CustomerIdentity(Base):
    """One way to reach a customer on one channel; `value_hash` is an HMAC so look-ups need no decryption."""
    __tablename__ = "customer_identities"
    __table_args__ = (UniqueConstraint("kind", "value_hash"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    kind: Mapped[str] = mapped_column(String(40))       # email, phone, wechat, webchat, webhook:<source>
    value_hash: Mapped[str] = mapped_column(String(64))
    value: Mapped[str] = mapped_column(EncryptedText)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    customer: Mapped[Customer] = relationship(back_populates="identities", lazy="raise")
