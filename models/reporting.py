"""Reporting's own tables: kept monthly reports, spike alerts and notices for staff.

None of them holds personal data: a report keeps only aggregate figures and complaint numbers,
an alert the numbers of the complaints involved.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, UTCDateTime, utcnow


class MonthlyReport(Base):
    """A month's report as generated (月度投诉报告): the figures are the report; Excel and HTML are
    rendered from them, so every format shows the same numbers."""
    __tablename__ = "monthly_reports"
    id: Mapped[int] = mapped_column(primary_key=True)
    month: Mapped[str] = mapped_column(String(7), unique=True)          # YYYY-MM, Beijing time
    as_of: Mapped[datetime] = mapped_column(UTCDateTime)                # the moment the figures describe
    figures: Mapped[dict[str, Any]] = mapped_column(JSON)
    generated_by: Mapped[str] = mapped_column(String(64))               # system, cli, agent:<id>
    generated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class SpikeAlert(Base):
    """An unusual rise of complaints about one category or product on one day (某个批次出现问题).
    One row per (day, dimension, value): a later check of the same day updates it, never repeats it."""
    __tablename__ = "spike_alerts"
    __table_args__ = (UniqueConstraint("day", "dimension", "value"),
                      Index("ix_spike_alerts_created", "created_at"))
    id: Mapped[int] = mapped_column(primary_key=True)
    day: Mapped[str] = mapped_column(String(10))                        # YYYY-MM-DD, Beijing time
    dimension: Mapped[str] = mapped_column(String(16))                  # category | product
    value: Mapped[str] = mapped_column(String(128))
    count: Mapped[int] = mapped_column(Integer)
    baseline_mean: Mapped[float] = mapped_column(Float)
    baseline_std: Mapped[float] = mapped_column(Float)
    threshold: Mapped[float] = mapped_column(Float)
    complaint_numbers: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    acknowledged_by: Mapped[int | None] = mapped_column(ForeignKey("agents.id"))


class StaffNotice(Base):
    """A notice for every agent of a role (and, when set, of one department) shown in the console:
    a new monthly report for managers, a spike alert for supervisors."""
    __tablename__ = "staff_notices"
    __table_args__ = (Index("ix_staff_notices_role", "role", "created_at"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    role: Mapped[str] = mapped_column(String(16))                       # the lowest role that sees it
    department_code: Mapped[str | None] = mapped_column(String(8))
    kind: Mapped[str] = mapped_column(String(32))                       # monthly_report | spike
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    link: Mapped[str | None] = mapped_column(String(255))
    dedupe_key: Mapped[str] = mapped_column(String(255), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
