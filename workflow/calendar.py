"""The Chinese working-day calendar: statutory holidays and make-up working days.

Years `chinesecalendar` knows come from it; for other years (or corrections) the
configured extra holidays and working days apply on top of the weekend rule.
"""
from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import chinese_calendar

SHANGHAI = ZoneInfo("Asia/Shanghai")


class WorkCalendar:
    def __init__(self, extra_holidays: set[date] = frozenset(), extra_workdays: set[date] = frozenset(),
                 tz: ZoneInfo = SHANGHAI):
        self.extra_holidays = set(extra_holidays)
        self.extra_workdays = set(extra_workdays)
        self.tz = tz
        self._known: dict[date, bool] = {}   # the package scans its tables on every call

    def is_workday(self, day: date) -> bool:
        known = self._known.get(day)
        if known is None:
            known = self._known[day] = self._is_workday(day)
        return known

    def _is_workday(self, day: date) -> bool:
        if day in self.extra_workdays:
            return True
        if day in self.extra_holidays:
            return False
        try:
            return chinese_calendar.is_workday(day)
        except NotImplementedError:  # a year the package does not know yet
            return day.weekday() < 5

    def add_working_days(self, start: datetime, days: int) -> datetime:
        """The same local clock time on the `days`-th working day after `start`'s day."""
        local = start.astimezone(self.tz)
        day = local.date()
        counted = 0
        while counted < days:
            day += timedelta(days=1)
            if self.is_workday(day):
                counted += 1
        return datetime.combine(day, local.timetz()).astimezone(start.tzinfo)

    def working_days_between(self, start: date, end: date) -> int:
        return sum(1 for n in range((end - start).days) if self.is_workday(start + timedelta(days=n + 1)))
