"""Durable timers: rows with a due time, claimed by the scheduler; never in-memory sleeps."""
from __future__ import annotations

from datetime import datetime

WARNING_SHARE = 0.8   # warn when 80 % of the time to a deadline has passed


def warning_time(start: datetime, deadline: datetime) -> datetime:
    return start + (deadline - start) * WARNING_SHARE
