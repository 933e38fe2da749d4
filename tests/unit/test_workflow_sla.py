"""SLA arithmetic on the Chinese working-day calendar: weekends, National Day, Spring Festival,
make-up working days, and years the calendar package does not know yet."""
from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest

from workflow.calendar import SHANGHAI, WorkCalendar
from workflow.config import ConfigError, WorkflowSettings, load_calendar
from workflow.sla import deadlines, minutes
from workflow.timers import warning_time

CAL = WorkCalendar()


def bj(*args) -> datetime:
    return datetime(*args, tzinfo=SHANGHAI)


@pytest.mark.parametrize("urgency, respond", [("P0", 2), ("P1", 4), ("P2", 8)])
def test_response_is_round_the_clock(urgency, respond):
    received = bj(2025, 10, 1, 23, 30)          # a holiday, late at night
    assert deadlines(urgency, received, CAL)[0] == received + timedelta(hours=respond)


@pytest.mark.parametrize("urgency, hours", [("P0", 24), ("P1", 48)])
def test_p0_p1_resolution_is_round_the_clock_even_over_holidays(urgency, hours):
    received = bj(2026, 2, 16, 10, 0)            # Spring Festival
    assert deadlines(urgency, received, CAL)[1] == received + timedelta(hours=hours)


def test_p2_resolution_skips_a_weekend():
    # Friday 20 Nov 2026 10:00: Mon 23 .. Fri 27 are days 1-5, Mon 30 is 6, Tue 1 Dec is 7.
    assert deadlines("P2", bj(2026, 11, 20, 10, 0), CAL)[1] == bj(2026, 12, 1, 10, 0)


def test_p2_over_national_day_counts_make_up_working_days():
    # Fri 26 Sep 2025: Sun 28 Sep (make-up) 1, Mon 29 2, Tue 30 3, 1-8 Oct holiday,
    # Thu 9 4, Fri 10 5, Sat 11 Oct (make-up) 6, Mon 13 7.
    assert deadlines("P2", bj(2025, 9, 26, 15, 0), CAL)[1] == bj(2025, 10, 13, 15, 0)


def test_p2_over_spring_festival_2026():
    # Thu 12 Feb 2026: Fri 13 1, Sat 14 (make-up) 2, 15-23 holiday, Tue 24..Fri 27 3-6, Sat 28 (make-up) 7.
    assert deadlines("P2", bj(2026, 2, 12, 9, 0), CAL)[1] == bj(2026, 2, 28, 9, 0)


def test_received_on_a_holiday_counts_from_the_next_working_day():
    # Received on 3 Oct 2025 (holiday): Thu 9, Fri 10, Sat 11 (make-up), Mon 13 .. Thu 16 = 7.
    assert deadlines("P2", bj(2025, 10, 3, 11, 0), CAL)[1] == bj(2025, 10, 16, 11, 0)


def test_the_beijing_date_counts_not_the_utc_date():
    # 17:00 UTC on Friday is 01:00 on Saturday in Beijing: counting starts from Saturday.
    received = datetime.fromisoformat("2026-11-20T17:00:00+00:00")
    due = deadlines("P2", received, CAL)[1]
    assert due.astimezone(SHANGHAI) == bj(2026, 12, 1, 1, 0)


def test_make_up_days_and_holidays_are_what_the_package_says():
    assert CAL.is_workday(date(2025, 9, 28)) and CAL.is_workday(date(2026, 2, 14))
    assert not CAL.is_workday(date(2025, 10, 8)) and not CAL.is_workday(date(2026, 2, 23))


def test_unknown_years_use_weekends_plus_configured_days(tmp_path):
    plain = WorkCalendar()
    # Fri 5 Jan 2099 + 1 working day = Mon 8 Jan by the weekend rule
    assert plain.add_working_days(bj(2099, 1, 2, 9, 0), 1) == bj(2099, 1, 5, 9, 0)
    f = tmp_path / "calendar.toml"
    f.write_text('holidays = ["2099-01-05", "2099-01-06"]\nworkdays = ["2099-01-10"]\n')
    cal = load_calendar(f)
    # Fri 2 Jan: Mon 5 and Tue 6 are holidays; Wed 7, Thu 8, Fri 9, Sat 10 (make-up) -> 4th is Sat 10
    assert cal.add_working_days(bj(2099, 1, 2, 9, 0), 4) == bj(2099, 1, 10, 9, 0)
    with pytest.raises(ConfigError):
        load_calendar(holidays=["2099-01-05"], workdays=["2099-01-05"])


def test_warning_at_80_percent_and_minutes():
    start = bj(2026, 11, 23, 9, 0)
    assert warning_time(start, start + timedelta(hours=8)) == bj(2026, 11, 23, 15, 24)
    assert minutes(start, start + timedelta(hours=2, seconds=29)) == 120


def test_workflow_settings_refuse_unknown_keys():
    with pytest.raises(ConfigError):
        WorkflowSettings.from_mapping({"progress_hourz": {}})
    s = WorkflowSettings.from_mapping({"progress_hours": {"P0": 6}})
    assert s.progress_hours == {"P0": 6, "P1": 24, "P2": 24}
